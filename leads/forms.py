"""Form submissions: per-field validation with Chinese messages, normalisation, progressive profiling.

Pure: the web and mini-program layers gather the input and what is already known about the visitor;
this decides what to ask, what is wrong and what gets stored.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from leads.form_fields import CHOICE, EMAIL_KIND, FIELD_SPECS, TEL, FieldSpec
from leads.identity import EMAIL, PHONE

# Phone and email become identities (they link leads); everything else goes into the profile.
CONTACT_FIELDS = ("phone", "email")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
MAX_PARAM_LEN = 200
MAX_SOURCE_CODE_LEN = 64  # channel "unknown:<code>" must fit the touchpoint's 100-character column

MSG_PHONE = "请输入正确的手机号码"
MSG_EMAIL = "请输入正确的邮箱地址"
MSG_CONSENT = "请阅读并勾选同意隐私政策"
MSG_CONTACT = "请填写手机号码或邮箱，以便我们联系您"
MSG_FORMAT = "{label}格式不正确"

_MOBILE = re.compile(r"1[3-9][0-9]{9}")  # [0-9], not \d: that also matches other scripts' digits
_PHONE_SEPARATORS = re.compile(r"[\s\-()]")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+")


class FormLike(Protocol):
    id: str
    fields: tuple[str, ...]
    required: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Validated:
    values: dict[str, str] = field(default_factory=dict)  # normalised, non-empty values only
    errors: dict[str, str] = field(default_factory=dict)  # field name (or "consent") -> Chinese message

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def contact(self) -> dict[str, str]:
        return {k: v for k, v in self.values.items() if k in CONTACT_FIELDS}

    @property
    def profile(self) -> dict[str, str]:
        return {k: v for k, v in self.values.items() if k not in CONTACT_FIELDS}


def normalise_phone(raw: str) -> str | None:
    """A mainland mobile number as 11 digits, or None. Accepts +86 / 0086 / 86, spaces, dashes, full-width."""
    digits = _PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix):]
            break
    return digits if _MOBILE.fullmatch(digits) else None


def normalise_email(raw: str) -> str | None:
    value = unicodedata.normalize("NFKC", raw).strip().lower()
    local, _, domain = value.partition("@")
    # 254: the longest address SMTP carries (RFC 5321), and what identities.value is sized for.
    if len(value) > 254 or len(local) > 64 or ".." in value or not _EMAIL.fullmatch(value):
        return None
    if any(len(label) > 63 for label in domain.split(".")):  # a DNS label is at most 63 characters
        return None
    return value


def clean_text(raw: str) -> str:
    """Trimmed, without control characters. Markup is kept as typed: it is text, escaped on output."""
    return "".join(ch for ch in raw if unicodedata.category(ch) != "Cc").strip()


def validate_field(spec: FieldSpec, raw: str) -> tuple[str, str | None]:
    """(normalised value, error message or None) for a non-empty input."""
    if spec.kind == TEL:
        phone = normalise_phone(raw)
        return (phone, None) if phone else ("", MSG_PHONE)
    if spec.kind == EMAIL_KIND:
        email = normalise_email(raw)
        return (email, None) if email else ("", MSG_EMAIL)
    value = clean_text(raw)
    if spec.kind == CHOICE:
        codes = dict(spec.choices)
        by_label = {label: code for code, label in spec.choices}
        code = value if value in codes else by_label.get(value)  # API clients may send the label
        return (code, None) if code else ("", f"请从列表中选择{spec.label}")
    if len(value) > spec.max_len:
        return ("", f"{spec.label}不能超过{spec.max_len}个字")
    return (value, None)


def _required_message(spec: FieldSpec) -> str:
    return f"请选择{spec.label}" if spec.kind == CHOICE else f"请填写{spec.label}"


def validate_submission(form: FormLike, raw: Mapping[str, Any], *, ask: Iterable[str], consent: bool,
                        identified: bool) -> Validated:
    """Check the asked fields of ``form``. ``identified``: the visitor is already known by a WeChat ID,
    so a submission without phone and email still has someone to attach to."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name in ask:
        spec = FIELD_SPECS[name]
        given = raw.get(name)
        if given is not None and not isinstance(given, str):
            errors[name] = MSG_FORMAT.format(label=spec.label)
            continue
        if not given or not given.strip():
            if name in form.required:
                errors[name] = _required_message(spec)
            continue
        value, error = validate_field(spec, given)
        if error:
            errors[name] = error
        elif value:
            values[name] = value
    if not identified and not errors and not any(k in values for k in CONTACT_FIELDS):
        errors["phone" if "phone" in form.fields else "email"] = MSG_CONTACT
    if not consent:
        errors["consent"] = MSG_CONSENT
    return Validated(values, errors) if not errors else Validated({}, errors)


def known_fields(profile: Mapping[str, Any], identity_kinds: Iterable[str]) -> set[str]:
    """The form fields a lead has already given: profile values, and phone / email as identities."""
    known = {k for k, v in profile.items() if k in FIELD_SPECS and v not in (None, "")}
    kinds = set(identity_kinds)
    if PHONE in kinds:
        known.add("phone")
    if EMAIL in kinds:
        known.add("email")
    return known


def fields_to_ask(form: FormLike, known: Iterable[str]) -> tuple[str, ...]:
    """Progressive profiling: a field the lead already gave is not asked again."""
    have = set(known)
    return tuple(name for name in form.fields if name not in have)


def privacy_version(text: str) -> str:
    """Which privacy text was agreed to: changing the text changes the version."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def consent_record(privacy_text: str, at: datetime, form_id: str, via: str) -> dict[str, str]:
    return {"state": "granted", "at": at.isoformat(), "privacy_version": privacy_version(privacy_text),
            "form": form_id, "via": via}


def clean_param(raw: Any, limit: int = MAX_PARAM_LEN) -> str:
    """A source / UTM parameter: text only, bounded, so a crafted link cannot bloat the touchpoint."""
    return clean_text(raw)[:limit] if isinstance(raw, str) else ""


def utm_params(raw: Mapping[str, Any]) -> dict[str, str]:
    return {key: value for key in UTM_KEYS if (value := clean_param(raw.get(key)))}
