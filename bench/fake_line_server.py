"""A lean fake LINE Messaging API for the benchmark, in a process of its own.

The tests' FakeLine (tests/fakes/providers.py) checks every detail of every call, on Python's threaded
http.server; at hundreds of calls a second it would eat the CPU the benchmark is measuring. This one answers
reply and push the way LINE does (bearer token, 1-5 messages, reply tokens valid once, retry keys answered 409
the second time) on aiohttp, and counts what it accepted: `GET /__bench/count`. `POST /__bench/tokens`
({user_id: [reply tokens]}) issues reply tokens before the clock starts.
"""
from __future__ import annotations

import socket
import sys

from aiohttp import web

ACCESS_TOKEN = "test-line-channel-access-token"


class LeanFakeLine:
    def __init__(self) -> None:
        self.reply_tokens: dict[str, str] = {}
        self.retry_keys: set[str] = set()
        self.accepted = 0  # messages accepted for delivery (a multicast counts once per recipient)
        self.calls = 0  # API calls answered, duplicates and errors included
        self.recipients: dict[str, int] = {}  # user id -> multicast deliveries (exactly once each, we hope)

    @web.middleware
    async def counting(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        if not request.path.startswith("/__bench"):
            self.calls += 1
        return await handler(request)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.counting])
        app.router.add_post("/v2/bot/message/reply", self.reply)
        app.router.add_post("/v2/bot/message/push", self.push)
        app.router.add_post("/v2/bot/message/multicast", self.multicast)
        app.router.add_get("/__bench/count", self.count)
        app.router.add_post("/__bench/tokens", self.tokens)
        return app

    @staticmethod
    async def _body(request: web.Request) -> dict | web.Response:
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return web.json_response({"message": "Authentication failed."}, status=401)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"message": "The request body could not be parsed as JSON"}, status=400)
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
            return web.json_response({"message": "The request body has 1 error(s)"}, status=400)
        return body

    async def reply(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        if self.reply_tokens.pop(body.get("replyToken"), None) is None:
            return web.json_response({"message": "Invalid reply token"}, status=400)
        self.accepted += 1
        return web.json_response({"sentMessages": [{"id": str(self.accepted)} for _ in body["messages"]]})

    async def push(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        key = request.headers.get("X-Line-Retry-Key")
        if key in self.retry_keys:
            return web.json_response({"message": "The retry key is already accepted"}, status=409)
        if key:
            self.retry_keys.add(key)
        self.accepted += 1
        return web.json_response({"sentMessages": [{"id": str(self.accepted)} for _ in body["messages"]]})

    async def multicast(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        to = body.get("to")
        if not isinstance(to, list) or not 1 <= len(to) <= 500:
            return web.json_response({"message": "Size must be between 1 and 500"}, status=400)
        key = request.headers.get("X-Line-Retry-Key")
        if key in self.retry_keys:
            return web.json_response({"message": "The retry key is already accepted"}, status=409)
        if key:
            self.retry_keys.add(key)
        for user in to:
            self.recipients[user] = self.recipients.get(user, 0) + 1
        self.accepted += len(to)
        return web.json_response({})

    async def count(self, _request: web.Request) -> web.Response:
        twice = sum(1 for n in self.recipients.values() if n > 1)
        return web.json_response({"accepted": self.accepted, "calls": self.calls,
                                  "multicast_recipients": len(self.recipients), "duplicated": twice})

    async def tokens(self, request: web.Request) -> web.Response:
        for user_id, tokens in (await request.json()).items():
            for token in tokens:
                self.reply_tokens[token] = user_id
        return web.json_response({})


def main() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    print(f"http://127.0.0.1:{port}", flush=True)
    web.run_app(LeanFakeLine().app(), host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    sys.exit(main())
