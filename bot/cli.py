"""``leadrelay`` command line: the only place that reads the environment."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from bot.config.core import Config, load_config
from bot.errors import ConfigError
from bot.logs.configure import configure_logging
from bot.people.cli import add_parser as add_user_parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadrelay", description="WeChat / WeCom lead capture bot")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the bot and API server")
    serve.add_argument("--config", required=True, help="path to the TOML configuration")
    serve.add_argument("--demo", action="store_true", help="load demo leads into an empty database first")
    serve.add_argument("--port", type=int, help="override server.port")
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply Alembic migrations up to the latest")
    up.add_argument("--config", required=True)
    scores = sub.add_parser("scores", help="lead scores")
    scores_sub = scores.add_subparsers(dest="scores_command", required=True)
    recompute = scores_sub.add_parser(
        "recompute", help="rebuild every lead's scores and quadrant from its touchpoints (after a rule change)")
    recompute.add_argument("--config", required=True)
    recompute.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")
    recompute.add_argument("--batch-size", type=int, default=5000, help="leads per transaction (default 5000)")
    recompute.add_argument("--restart", action="store_true", help="start over instead of resuming an unfinished run")
    recompute.add_argument("--workers", type=int, default=1, help="processes sharing the work (PostgreSQL only)")
    wechat = sub.add_parser("wechat", help="Official Account administration")
    wechat_sub = wechat.add_subparsers(dest="wechat_command", required=True)
    menu = wechat_sub.add_parser("push-menu", help="publish the [menu] of the config to the Official Account")
    menu.add_argument("--config", required=True)
    add_user_parser(sub)
    return parser


def _load(path: str) -> Config:
    return load_config(path, os.environ)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(os.environ.get("LEADRELAY_LOG_LEVEL", "INFO"))
    try:
        config = _load(args.config)
    except ConfigError as exc:
        print(f"leadrelay: {exc}", file=sys.stderr)
        return 2
    if args.command == "db":
        from storage.cli import db_upgrade

        asyncio.run(db_upgrade(config.database))
        print("database is at the latest migration")
        return 0
    if args.command == "scores":
        from bot.app import domain_events  # the same subscribers as the running app's
        from storage.cli import scores_recompute

        return asyncio.run(scores_recompute(config.database, config.scoring.rules, domain_events(config),
                                            dry_run=args.dry_run, batch_size=args.batch_size,
                                            restart=args.restart, workers=args.workers))
    if args.command == "user":
        from bot.people.cli import run

        return asyncio.run(run(args, config.database, config=config))
    if args.command == "wechat":
        from bot.errors import WeChatAPIError
        from bot.wechat.menu import push_menu

        try:
            print(asyncio.run(push_menu(config)))
        except (ConfigError, WeChatAPIError) as exc:
            print(f"leadrelay: {exc}", file=sys.stderr)
            return 1
        return 0
    from bot.serve import serve

    return serve(config, demo=args.demo, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
