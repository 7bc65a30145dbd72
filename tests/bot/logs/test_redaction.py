"""No personal data or secret in the log at any level: the masking functions, and a DEBUG scenario with a
database error and live outbound calls, captured through the handler the CLI installs."""

from __future__ import annotations

import io
import logging
import socket
import sys
from collections.abc import Iterator

import aiohttp
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config.capture import MiniProgramConfig
from bot.logs.configure import LOGGER_FLOORS, configure_logging
from bot.logs.redact import RedactingFilter, mask_email, mask_phone, redact, short_id
from bot.wechat.api import OfficialAccountAPI, WeChatTransportError, WeComAPI
from bot.wechat.miniprogram import MiniProgramAPI
from storage.db import session_factory
from storage.models import Identity, Lead
from tests.support.fakes.configs import oa_config, wecom_config
from tests.support.fakes.wechat_server import FakeWeChatServer

PHONE = "13812345678"
EMAIL = "alice.wang@example.com"
NAME = "王小明"
OPENID = "oLeadRelayTestOpenId00000001"
EXTERNAL_USERID = "wmLeadRelayTestExternal0001"


# ---- pure functions ------------------------------------------------------------------------------------

def test_masks_keep_only_what_helps_an_operator() -> None:
    assert mask_phone(PHONE) == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "138****5678"
    assert mask_phone("12345") == "***"
    assert mask_email(EMAIL) == "a***@example.com"
    assert mask_email("not an email") == "***"
    assert short_id(OPENID) == "oLea...0001"
    assert short_id("short") == "***"
    assert short_id(short_id(OPENID)) == short_id(OPENID)


@pytest.mark.parametrize(("line", "expected"), [
    ('"GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=S3cr3t HTTP/1.1" 200 95',
     '"GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=*** HTTP/1.1" 200 95'),
    ("/cgi-bin/gettoken?corpid=ww1&corpsecret=abc", "/cgi-bin/gettoken?corpid=ww1&corpsecret=***"),
    ("/cgi-bin/user/info?access_token=TOKEN-1&openid=" + OPENID + "&lang=zh_CN",
     "/cgi-bin/user/info?access_token=***&openid=oLea...0001&lang=zh_CN"),
    ("/sns/jscode2session?appid=wx1&secret=s&js_code=JS&grant_type=authorization_code",
     "/sns/jscode2session?appid=wx1&secret=***&js_code=***&grant_type=authorization_code"),
    ("{'openid': 'o1', 'session_key': 'SK+/=='}", "{'openid': '***', 'session_key': '***'}"),
    ('{"access_token": "T", "expires_in": 7200}', '{"access_token": "***", "expires_in": 7200}'),
    ("Key (kind, app, value)=(phone, , 13812345678) already exists.",
     "Key (kind, app, value)=(phone, , 138****5678) already exists."),
    ("call +8613812345678 or 138 1234 5678", "call 138****5678 or 138****5678"),
    ("mail Alice.Wang+crm@example.com.cn now", "mail A***@example.com.cn now"),
    ("postgresql+asyncpg://leadrelay:hunter2@db.internal/leadrelay",
     "postgresql+asyncpg://leadrelay:h***@db.internal/leadrelay"),
])
def test_redact_rewrites_secrets_identifiers_phones_and_emails(line: str, expected: str) -> None:
    assert redact(line) == expected
    assert redact(expected) == expected  # a record may pass two filtered handlers


@pytest.mark.parametrize("line", [
    "inbox row 12345 failed 3 times", "errcode 40001 at 1733140000.123", "lead 17 entered Q1",
    "outbox row 8 (send_text) attempt 2 failed, retry in 30 s: WeChat API error 45009: api freq out of limit",
    "trace 17331400001234567 took 13 ms",
])
def test_redact_leaves_ordinary_lines_alone(line: str) -> None:
    assert redact(line) == line


def test_the_filter_redacts_arguments_and_tracebacks() -> None:
    try:
        raise ValueError(f"duplicate {PHONE} for {EMAIL}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "lead %s: %s", (NAME, PHONE), None)
        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "138****5678" in text and "a***@example.com" in text and "ValueError" in text
    assert PHONE not in text and EMAIL not in text


# ---- scenario: DEBUG, a database error, live outbound calls ----------------------------------------------

@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The CLI's logging set-up at DEBUG, written to a buffer instead of stderr."""
    root = logging.getLogger()
    saved = root.level, {name: logging.getLogger(name).level for name in LOGGER_FLOORS}
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    configure_logging("DEBUG", handler)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(saved[0])
    for name, level in saved[1].items():
        logging.getLogger(name).setLevel(level)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _database_errors(engine: AsyncEngine) -> None:
    log = logging.getLogger("bot.inbox.tx")  # where the app logs a failed event
    sessions = session_factory(engine)
    async with sessions() as session:
        lead = Lead(display_name=NAME, profile={"phone": PHONE, "email": EMAIL})
        session.add(lead)
        await session.flush()
        session.add_all([Identity(lead_id=lead.id, kind="phone", value=PHONE),
                         Identity(lead_id=lead.id, kind="email", value=EMAIL)])
        await session.commit()
    # The same primary key again: the failed INSERT carries the name, the phone and the email.
    async with sessions() as session:
        session.add(Lead(id=lead.id, display_name=NAME, profile={"phone": PHONE, "email": EMAIL}))
        with pytest.raises(IntegrityError):
            try:
                await session.commit()
            except IntegrityError:
                log.exception("inbox row %s failed", 1)
                raise
    # A duplicate identity: PostgreSQL quotes the duplicate key, phone included, in the error itself.
    for kind, value in (("phone", PHONE), ("email", EMAIL)):
        async with sessions() as session:
            session.add(Identity(lead_id=lead.id, kind=kind, value=value))
            with pytest.raises(IntegrityError):
                try:
                    await session.commit()
                except IntegrityError:
                    log.exception("inbox row %s failed", 2)
                    raise


async def _outbound_calls(fake: FakeWeChatServer, redis_client, prefix: str) -> str:
    log = logging.getLogger("handlers.common")
    fake.state.register_user(OPENID, unionid="uLeadRelayTestUnionId0000001", nickname=NAME)
    fake.state.register_external_contact(EXTERNAL_USERID, NAME)
    oa = OfficialAccountAPI(oa_config(fake.base_url), redis_client, prefix)
    wecom = WeComAPI(wecom_config(fake.base_url), redis_client, prefix)
    dead = OfficialAccountAPI(oa_config(f"http://127.0.0.1:{_closed_port()}"), redis_client, prefix + "dead:")
    try:
        await oa.user_info(OPENID)
        await wecom.get_external_contact(EXTERNAL_USERID)
        # requests repeats the token URL, secret included, in its connection error.
        with pytest.raises(WeChatTransportError):
            try:
                await dead.user_info(OPENID)
            except WeChatTransportError as exc:
                log.warning("user_info for %s failed, continuing without UnionID: %s", short_id(OPENID), exc,
                            exc_info=True)
                raise
        async with aiohttp.ClientSession() as http:
            mp = MiniProgramAPI(MiniProgramConfig(app_id="wx-test-app", app_secret="oa-secret"), fake.base_url,
                                redis_client, prefix, http)
            try:
                login = await mp.code2session(fake.state.issue_login_code("wx-test-app", OPENID))
                logging.getLogger("bot.capture.miniprogram_web").debug("login %r", login)
                phone = await mp.phone_number(fake.state.issue_phone_code("wx-test-app", PHONE))
                assert phone.number == PHONE
            finally:
                await mp.aclose()
        return login.session_key
    finally:
        for api in (oa, wecom, dead):
            await api.aclose()


async def test_debug_log_of_a_database_error_and_outbound_calls_has_no_personal_data_or_secret(
        captured: io.StringIO, engine, redis_client, backend) -> None:
    await _database_errors(engine)
    async with FakeWeChatServer() as fake:
        session_key = await _outbound_calls(fake, redis_client, backend.redis_prefix)
        tokens = list(fake.state.tokens)
    text = captured.getvalue()

    # Something was captured, or the absences below would prove nothing.
    assert text.count("IntegrityError") >= 3
    assert "/cgi-bin/token?" in text and "/cgi-bin/gettoken?" in text and "getuserphonenumber" in text
    assert "WeChatTransportError" in text and "ConnectionError" in text
    assert len(tokens) >= 2

    secrets = ["oa-secret", "contact-secret", session_key, *tokens]
    personal = [PHONE, EMAIL, NAME, OPENID, EXTERNAL_USERID]
    leaked = [value for value in secrets + personal if value in text]
    assert leaked == [], text
    assert "secret=***" in text and "access_token=***" in text  # redacted in place, not dropped
