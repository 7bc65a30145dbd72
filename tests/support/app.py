"""The one way tests build the whole app: a test config on the current backend, the run's jieba dictionary,
served on a real port by pytest-aiohttp's test server."""

from __future__ import annotations

from typing import Any, Protocol

import jieba
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp.plugin import AiohttpClient

from bot.app import create_app
from bot.config.core import Config
from bot.dispatch.router import Router
from tests.support.backends import Backend
from tests.support.helpers import make_config

Client = TestClient[web.Request, web.Application]


class AppClient(Protocol):
    async def __call__(self, config: Config | None = None, /, *, router: Router | None = None,
                       port: int | None = None, **sections: Any) -> Client: ...


@pytest.fixture
def app_client(aiohttp_client: AiohttpClient, backend: Backend, jieba_base: jieba.Tokenizer) -> AppClient:
    """``await app_client(**sections)`` serves ``make_config(backend, **sections)`` (``api_base_url=`` included);
    ``await app_client(config)`` serves a config the test built on ``backend`` itself.

    ``router`` replaces the product's handlers; ``port`` pins the server's port, for a ``server.public_url`` that
    must lead back to it. Start-up runs inside the call: a config the app refuses raises there.
    """

    async def build(config: Config | None = None, /, *, router: Router | None = None, port: int | None = None,
                    **sections: Any) -> Client:
        if config is None:
            config = make_config(backend, **sections)
        elif sections:
            raise TypeError("pass a ready config or make_config's sections, not both")
        app = create_app(config, router=router, jieba_base=jieba_base)
        return await aiohttp_client(app, server_kwargs=None if port is None else {"port": port})

    return build
