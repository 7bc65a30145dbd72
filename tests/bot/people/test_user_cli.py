"""``leadrelay user add|list|disable|token`` through the CLI's main(), against the backend's database."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.people.passwords import verify_password
from storage.db import create_engine, session_factory
from storage.models import ApiToken, AuditEntry, Team, TeamMember, User
from storage.repos.api_tokens import token_hash, user_for_token
from storage.settings import DatabaseConfig
from tests.support.backends import Backend


@pytest.fixture
def config(tmp_path: Path, backend: Backend) -> str:
    path = tmp_path / "leadrelay.toml"
    path.write_text(f'[database]\nurl = "{backend.database_url}"\n[wechat]\napp_id = "wx1"\ntoken = "t"\n',
                    encoding="utf-8")
    return str(path)


def rows(backend: Backend, model: Any) -> list[Any]:
    async def read() -> list[Any]:
        engine = create_engine(DatabaseConfig(url=backend.database_url))
        try:
            async with session_factory(engine)() as session:
                return list((await session.execute(select(model).order_by(*model.__mapper__.primary_key))).scalars())
        finally:
            await engine.dispose()

    return asyncio.run(read())


def token_user(backend: Backend, token: str) -> str | None:
    async def read() -> str | None:
        engine = create_engine(DatabaseConfig(url=backend.database_url))
        try:
            async with session_factory(engine)() as session, session.begin():
                user = await user_for_token(session, token_hash(token))
                return None if user is None else user.username
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_bootstrap_an_admin_then_users_tokens_and_disabling(config: str, backend: Backend,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["user", "add", "root", "--role", "admin", "--config", config]) == 0
    out = capsys.readouterr().out
    password = out.split("password (shown once): ")[1].strip()
    [root] = rows(backend, User)
    assert root.role == "admin" and verify_password(root.password_hash, password) and password not in root.password_hash

    monkeypatch.setattr(sys, "stdin", io.StringIO("a chosen passphrase\n"))
    assert main(["user", "add", "li", "--role", "sdr", "--team", "华东", "--wecom-userid", "LiSi",
                 "--password-stdin", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "password" not in out and "created li (sdr) in team 华东" in out
    li = next(u for u in rows(backend, User) if u.username == "li")
    assert li.wecom_userid == "LiSi" and verify_password(li.password_hash, "a chosen passphrase")
    [team] = rows(backend, Team)
    assert team.name == "华东" and [(m.team_id, m.user_id) for m in rows(backend, TeamMember)] == [(team.id, li.id)]

    assert main(["user", "token", "li", "--config", config]) == 0
    token = capsys.readouterr().out.strip()
    [stored] = rows(backend, ApiToken)
    assert stored.token_hash == token_hash(token) and token not in stored.token_hash
    assert token_user(backend, token) == "li"

    assert main(["user", "list", "--config", config]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:3] for line in listing] == [["root", "admin", "active"], ["li", "sdr", "active"]]

    assert main(["user", "disable", "li", "--config", config]) == 0
    assert "disabled li" in capsys.readouterr().out
    assert token_user(backend, token) is None  # a disabled user's tokens stop working
    assert main(["user", "token", "li", "--config", config]) == 2

    entries = rows(backend, AuditEntry)
    assert [(e.action, e.actor_label, e.actor_user_id) for e in entries] == [
        ("user.create", "cli", None), ("user.create", "cli", None), ("team.create", "cli", None),
        ("team.member", "cli", None), ("token.issue", "cli", None), ("user.disable", "cli", None)]
    assert all(token not in str(e.after) and password not in str(e.after) for e in entries)


@pytest.mark.parametrize("argv, message", [
    (["user", "add", "x", "--role", "king"], "role"),
    (["user", "add", "bad name", "--role", "sdr"], "username"),
    (["user", "disable", "nobody"], "no such user"),
    (["user", "token", "nobody"], "no such user"),
])
def test_bad_input_is_a_clear_error_with_exit_code_2(config: str, backend: Backend, argv: list[str], message: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--config", config]) == 2
    assert message in capsys.readouterr().err
    assert rows(backend, User) == [] and rows(backend, AuditEntry) == []


def test_a_taken_username_or_a_short_password_changes_nothing(config: str, backend: Backend,
                                                              capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["user", "add", "li", "--role", "sdr", "--config", config]) == 0
    assert main(["user", "add", "li", "--role", "admin", "--config", config]) == 2
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["user", "add", "wang", "--role", "sdr", "--password-stdin", "--config", config]) == 2
    err = capsys.readouterr().err
    assert "li" in err and "password" in err
    assert [(u.username, u.role) for u in rows(backend, User)] == [("li", "sdr")]
    assert len(rows(backend, AuditEntry)) == 1
