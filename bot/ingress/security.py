"""Proving a callback is WeChat's: signatures, freshness, decryption and safe XML.

Signatures are computed with wechatpy's signer and compared in constant time (wechatpy itself uses ``!=``);
decryption is wechatpy's PrpCrypto, whose ReceiveId check raises when the message was not meant for us.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import struct
import time
from collections.abc import Callable
from typing import Any

import xmltodict
from wechatpy.crypto import PrpCrypto as OAPrpCrypto
from wechatpy.crypto import WeChatCrypto as OACrypto
from wechatpy.enterprise.crypto import PrpCrypto as WorkPrpCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WorkCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.utils import WeChatSigner

from bot.errors import BadSignature, MalformedPayload, StaleTimestamp, WrongReceiver

# Any markup declaration except CDATA: DOCTYPE, ENTITY, comments. WeChat never sends them, and refusing
# them before expat runs keeps entity expansion (and its memory) out of the picture entirely.
_DECLARATION = re.compile(rb"<!(?!\[CDATA\[)")
_PROCESSING_INSTRUCTION = re.compile(rb"<\?(?!xml[\s?])", re.IGNORECASE)


def signature_of(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def verify_signature(given: str | None, *parts: str) -> None:
    if not given:
        raise BadSignature("missing signature")
    if not hmac.compare_digest(signature_of(*parts).encode(), given.encode()):
        raise BadSignature("signature mismatch")


def check_timestamp(timestamp: str | None, max_skew_s: int, now: Callable[[], float] = time.time) -> str:
    if not timestamp or not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:  # "²".isdigit()
        raise BadSignature("missing or malformed timestamp")
    if max_skew_s and abs(now() - int(timestamp)) > max_skew_s:
        raise StaleTimestamp(f"timestamp outside the allowed {max_skew_s} s window")
    return timestamp


# The envelope's Encrypt field: the only part of a safe-mode body we use, and the part the signature covers.
_ENCRYPT_FIELD = re.compile(rb"<Encrypt><!\[CDATA\[([A-Za-z0-9+/=]{1,65536})\]\]></Encrypt>")


def encrypted_field(body: bytes) -> str:
    """The Encrypt field of a safe-mode envelope. A plain single CDATA field is read directly (parsing the
    envelope cost a tenth of the request time); anything unusual goes through the full, guarded parser."""
    if not (_DECLARATION.search(body) or _PROCESSING_INSTRUCTION.search(body)):
        found = _ENCRYPT_FIELD.findall(body)
        if len(found) == 1 and body.lstrip().startswith(b"<xml>") and body.rstrip().endswith(b"</xml>"):
            return found[0].decode("ascii")
    value = parse_xml(body).get("Encrypt")
    if not isinstance(value, str) or not value:
        raise MalformedPayload("missing <Encrypt>")
    return value


def parse_xml(body: bytes) -> dict[str, Any]:
    """Parse a WeChat XML document into a flat dict of its <xml> root's children."""
    if _DECLARATION.search(body) or _PROCESSING_INSTRUCTION.search(body):
        raise MalformedPayload("XML declarations, DTDs, entities and comments are not accepted")
    try:
        doc = xmltodict.parse(body, disable_entities=True)
    except Exception as exc:  # expat raises several unrelated types for broken input
        raise MalformedPayload(f"malformed XML: {exc}") from exc
    root = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(root, dict):
        raise MalformedPayload("the root element must be <xml> with child elements")
    return root


class Envelope:
    """Safe-mode wrapper: decrypts with our key and insists the ReceiveId is ours. Built once per app."""

    def __init__(self, token: str, aes_key: str, receiver_id: str, *, work: bool) -> None:
        self.token = token
        self.receiver_id = receiver_id
        key = base64.b64decode(aes_key + "=")
        self._prp = WorkPrpCrypto(key) if work else OAPrpCrypto(key)
        self._crypto = (WorkCrypto if work else OACrypto)(token, aes_key, receiver_id)

    def decrypt(self, encrypted: str, msg_signature: str | None, timestamp: str, nonce: str) -> bytes:
        verify_signature(msg_signature, self.token, timestamp, nonce, encrypted)
        try:
            plain = self._prp.decrypt(encrypted, self.receiver_id)
        except (InvalidAppIdException, InvalidCorpIdException) as exc:
            raise WrongReceiver("decrypted ReceiveId is not ours") from exc
        except (ValueError, binascii.Error, IndexError, UnicodeDecodeError, struct.error) as exc:
            raise MalformedPayload("cannot decrypt the Encrypt field") from exc
        return plain.encode("utf-8")

    def encrypt(self, reply_xml: str, nonce: str, timestamp: str) -> str:
        return self._crypto.encrypt_message(reply_xml, nonce, timestamp)
