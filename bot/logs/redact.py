"""Personal data and secrets out of log lines.

Pure masking functions, and a handler filter that applies them to every record a handler emits: the
project's own messages, third-party ones (urllib3 logs each request URL, query string included, at DEBUG)
and tracebacks (a requests error repeats the URL; a PostgreSQL unique violation quotes the duplicate key).
"""

from __future__ import annotations

import logging
import re

# Query / JSON / repr keys whose values are credentials or single-use codes: never logged at all.
SECRET_KEYS = ("access_token", "refresh_token", "secret", "corpsecret", "app_secret", "appsecret", "js_code",
               "code", "session_key", "encoding_aes_key", "password")
# Keys whose values identify a person: shortened, so lines stay correlatable without the whole identifier.
IDENTIFIER_KEYS = ("openid", "unionid", "external_userid")

_KEY_VALUE = re.compile(
    r"(?<![\w-])([\"']?)(" + "|".join(SECRET_KEYS + IDENTIFIER_KEYS) + r")\1(\s*[=:]\s*)([\"']?)([^&\s\"',;)\]}]+)",
    re.IGNORECASE)
# Mainland mobile numbers, optionally with +86 and separators; not inside a longer run of digits.
_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_ELLIPSIS = "..."


def mask_phone(phone: str) -> str:
    """138****5678 for any number long enough to keep its prefix and last four digits."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) < 8:
        return "***"
    return f"{digits[:3]}****{digits[-4:]}"


def mask_email(email: str) -> str:
    """a***@example.com: the domain stays (it says which company), the mailbox goes."""
    local, at, domain = email.partition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def short_id(identifier: str) -> str:
    """oAbc...9Q2k: enough to find the row by prefix and suffix, not the identifier itself."""
    if _ELLIPSIS in identifier or identifier == "***":
        return identifier  # already shortened: redaction may run twice on one record
    if len(identifier) <= 12:
        return "***"
    return f"{identifier[:4]}{_ELLIPSIS}{identifier[-4:]}"


def _key_value(match: re.Match[str]) -> str:
    quote, key, sep, vquote, value = match.groups()
    if value in ("None", "null"):
        return match.group(0)
    masked = short_id(value) if key.lower() in IDENTIFIER_KEYS else "***"
    return f"{quote}{key}{quote}{sep}{vquote}{masked}"


def redact(text: str) -> str:
    """The text with credentials removed, identifiers shortened, phone numbers and emails masked."""
    text = _KEY_VALUE.sub(_key_value, text)
    text = _PHONE.sub(lambda m: mask_phone(m.group(0)), text)
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


class RedactingFilter(logging.Filter):
    """Rewrites a record into its redacted text before any formatter sees it.

    Installed on handlers, not loggers: a logger's filters skip records propagated from child loggers, so
    third-party lines would pass. The record is rewritten in place (message, traceback, stack), so every
    handler after this one gets the redacted version too. Runs only for records a handler emits.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
