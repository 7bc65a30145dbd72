"""``leadrelay user add|list|disable|token|login-link``: bootstrap the first admin, manage users without the console.

A generated password and a new API token are printed once and never stored (only their hashes are).
Exit codes: 0 done, 2 refused input (unknown role, unknown user, taken username).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from bot.config.core import Config
from bot.people import login_links
from bot.people.accounts import (
    AccountError,
    Who,
    check_password,
    check_role,
    check_text,
    check_username,
    create_user,
    disable,
    generate_password,
)
from bot.people.passwords import hash_password
from storage.db import create_engine, session_factory
from storage.repos import audit
from storage.repos.api_tokens import issue_token
from storage.repos.teams import team_ids_of
from storage.repos.users import list_users, user_by_name
from storage.settings import DatabaseConfig

CLI = Who("cli")


def add_parser(sub: Any) -> None:
    """The ``user`` subcommands, added to bot/cli.py's parser."""
    user = sub.add_parser("user", help="console and API users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="create a user (prints a generated password unless --password-stdin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, help="sdr | sales | team_lead | manager | admin")
    add.add_argument("--team", help="add the user to this team (created when missing)")
    add.add_argument("--wecom-userid", help="the user's WeCom member id")
    add.add_argument("--display-name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    for name, text in (("list", "list users"), ("disable", "disable a user (their tokens stop working)"),
                       ("token", "print a new API token for a user (shown once)")):
        cmd = user_sub.add_parser(name, help=text)
        if name != "list":
            cmd.add_argument("name")
        if name == "token":
            cmd.add_argument("--label", default="cli", help="a note to tell the token apart")
    link = user_sub.add_parser("login-link", help="print a single-use sign-in link to the mobile inbox (sandbox)")
    link.add_argument("name")
    for cmd in user_sub.choices.values():
        cmd.add_argument("--config", required=True)


def _fail(message: str) -> int:
    print(f"leadrelay: {message}", file=sys.stderr)
    return 2


async def run(args: argparse.Namespace, database: DatabaseConfig, stdin: TextIO | None = None, *,
              config: Config | None = None) -> int:
    """``config``: the whole configuration, which ``login-link`` needs (the others need only ``database``)."""
    engine = create_engine(database)
    try:
        async with session_factory(engine)() as session, session.begin():
            if args.user_command == "login-link":
                return await _login_link(session, args, config)
            return await _command(session, args, stdin or sys.stdin, config)
    except AccountError as exc:
        return _fail(str(exc))
    finally:
        await engine.dispose()


async def _command(session: Any, args: argparse.Namespace, stdin: TextIO, config: Config | None = None) -> int:
    if args.user_command == "list":
        for user in await list_users(session, limit=10**9):
            teams = len(await team_ids_of(session, user.id))
            state = "disabled" if user.disabled_at else "active"
            print(f"{user.username}\t{user.role}\t{state}\tteams={teams}\t{user.display_name}")
        return 0
    username = check_username(args.name)
    if args.user_command == "add":
        return await _add(session, args, username, stdin)
    user = await user_by_name(session, username)
    if user is None:
        raise AccountError("not_found", f"no such user: {username}")
    if args.user_command == "disable":
        changed = await _disable(session, user, config)
        print(f"disabled {username}" if changed else f"{username} was already disabled")
        return 0
    if user.disabled_at is not None:
        raise AccountError("disabled", f"{username} is disabled: a token would not work")
    token, row = await issue_token(session, user.id, label=args.label[:100])
    await audit.record(session, action="token.issue", actor_label=CLI.label, target_kind="user",
                       target_id=user.id, after={"token_id": row.id, "label": row.label})
    print(token)
    return 0


async def _disable(session: Any, user: Any, config: Config | None) -> bool:
    """Disables the user; their pending MQLs are re-routed, heard by the running app's subscribers (cards)."""
    if config is None:
        return await disable(session, CLI, user)
    from bot.app import domain_events  # the same subscribers as the running app's

    return await disable(session, CLI, user, routing=config.routing, events=domain_events(config))


async def _add(session: Any, args: argparse.Namespace, username: str, stdin: TextIO) -> int:
    role = check_role(args.role)
    password = check_password(stdin.readline().rstrip("\r\n")) if args.password_stdin else generate_password()
    display = check_text("--display-name", args.display_name, 100)
    wecom = check_text("--wecom-userid", args.wecom_userid, 64)
    team = check_text("--team", args.team, 64)
    await create_user(session, CLI, username=username, role=role, password_hash=hash_password(password),
                      display_name=display, wecom_userid=wecom, team=team)
    print(f"created {username} ({role})" + (f" in team {team}" if team else ""))
    if not args.password_stdin:
        print(f"password (shown once): {password}")
    return 0


async def _login_link(session: Any, args: argparse.Namespace, config: Config | None) -> int:
    """A sealed, expiring, single-use sign-in link to /m/ (bot/people/login_links.py). Sandbox only: a live
    deployment signs salespeople in with WeCom OAuth, and a link that bypasses it would be a back door."""
    if config is None or config.wechat.mode != "sandbox":
        raise AccountError("live", "login links exist in sandbox mode only: in live mode salespeople sign in "
                                   "with WeCom (open the app in WeCom)")
    username = check_username(args.name)
    user = await user_by_name(session, username)
    if user is None:
        raise AccountError("not_found", f"no such user: {username}")
    if user.disabled_at is not None:
        raise AccountError("disabled", f"{username} is disabled: the link would not work")
    ttl = config.handoff.login_link_ttl_s
    token = login_links.issue(config.keyring, user.id, now=int(time.time()), ttl_s=ttl)
    await audit.record(session, action="login_link.issue", actor_label=CLI.label, target_kind="user",
                       target_id=user.id, after={"ttl_s": ttl})
    print(login_links.link(config.server.public_url, token))
    return 0
