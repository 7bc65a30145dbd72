"""Baseline servers for bench/callback.py, each run as its own single process.

* ``bare``: an aiohttp endpoint that reads the body and answers ``success``; the ceiling of aiohttp itself.
* ``decrypt``: what any WeChat SDK does and nothing more: check the signature, verify ``msg_signature`` and
  decrypt with wechatpy's ``WeChatCrypto.decrypt_message``, parse with ``wechatpy.parse_message``, answer
  ``success``. No storage, so it is the ceiling of a bot that stores nothing.

Both use the same event loop policy as ``leadrelay serve`` (uvloop when importable) and no access log.

    python bench/baselines.py decrypt --port 18081 --token T --aes-key KEY --app-id wx...
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web

PATH = "/wechat/callback"
SUCCESS = "success"


def bare_app() -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text=SUCCESS)

    app = web.Application()
    app.router.add_post(PATH, receive)
    return app


def decrypt_app(token: str, aes_key: str, app_id: str) -> web.Application:
    from wechatpy import parse_message
    from wechatpy.crypto import WeChatCrypto
    from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
    from wechatpy.utils import check_signature

    crypto = WeChatCrypto(token, aes_key, app_id)

    async def receive(request: web.Request) -> web.Response:
        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        try:
            check_signature(token, q.get("signature", ""), timestamp, nonce)
            body = await request.read()
            xml = crypto.decrypt_message(body, q.get("msg_signature", ""), timestamp, nonce)
        except (InvalidSignatureException, InvalidAppIdException):
            return web.Response(status=403, text="bad signature")
        message = parse_message(xml)
        if message.type != "text":
            return web.Response(status=400, text="unexpected message type")
        return web.Response(text=SUCCESS)

    app = web.Application()
    app.router.add_post(PATH, receive)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["bare", "decrypt"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default="")
    parser.add_argument("--aes-key", default="")
    parser.add_argument("--app-id", default="")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost"):
        parser.error("baselines only listen on 127.0.0.1")
    try:  # the same policy as bot/serve.py
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    if args.kind == "bare":
        app = bare_app()
    else:
        if not (args.token and args.aes_key and args.app_id):
            parser.error("decrypt needs --token, --aes-key and --app-id")
        app = decrypt_app(args.token, args.aes_key, args.app_id)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, handle_signals=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
