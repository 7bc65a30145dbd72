"""Logging set-up of the ``leadrelay`` process: one format, levels, and redaction on the handler."""

from __future__ import annotations

import logging

from bot.logs.redact import RedactingFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Floors that hold even when the root logger is at DEBUG.
# - sqlalchemy: at DEBUG the engine logs every fetched row (names, phones, emails). ``database.echo``
#   still shows statements: echo bypasses the logger's level, and parameters are hidden (storage/db.py).
# - aiosqlite: at DEBUG it logs every statement with its parameters (the embedded backend).
# - apscheduler: a line per job run.
LOGGER_FLOORS = {"sqlalchemy": logging.WARNING, "aiosqlite": logging.INFO, "apscheduler": logging.WARNING}


def configure_logging(level: str | int = "INFO", handler: logging.Handler | None = None) -> None:
    """Root logger at ``level``, writing through ``handler`` (stderr by default) with redaction on it.

    The filter sits on the handler, so third-party records propagated to the root are redacted as well.
    Like ``logging.basicConfig``, a root that already has handlers (an embedding process, a test runner
    calling the CLI) is left alone unless a handler is given.
    """
    for name, floor in LOGGER_FLOORS.items():
        logging.getLogger(name).setLevel(floor)
    root = logging.getLogger()
    if handler is None:
        if root.handlers:
            return
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level)
