"""Provider webhooks: verify the signature on the raw body, parse, drop duplicates, store, answer at once.
The engine step and the replies happen afterwards in the background pipeline.

`POST /webhooks/{name}` is a plain ASGI endpoint placed before FastAPI's routes: FastAPI's request handling
(route matching, dependency solving, Request and Response objects) cost 0.3-0.4 ms of CPU per webhook, as much
as verifying, parsing and storing it, on the path that takes every message of every worker (bench/webhooks.py).
It is documented in the OpenAPI schema by hand (`OPENAPI_PATHS`)."""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from bot.channels.base import WebhookRejected

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

MAX_BODY_BYTES = 1_000_000  # LINE and Messenger batch events, but a genuine webhook is a few kilobytes


def _channel(app: Any, name: str):  # type: ignore[no-untyped-def]
    channel = app.state.ctx.channels.get(name)
    return channel if channel is not None and channel.enabled() else None


class WebhookReceiver:
    """The ASGI endpoint of `POST /webhooks/{name}`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope["app"]
        name = scope["path_params"]["name"]
        counts: Counter[tuple[str, str]] = app.state.webhook_counts
        channel = _channel(app, name)
        if channel is None:
            return await _answer(send, 404, {"detail": f"channel {name!r} is not configured"})
        body = await _read_body(receive)
        if body is None:
            counts[(name, "rejected_413")] += 1
            return await _answer(send, 413, {"detail": f"a webhook body is at most {MAX_BODY_BYTES} bytes"})
        ctx = app.state.ctx
        now = ctx.service.clock()
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        try:
            events = channel.parse_webhook(headers, body, now)
        except WebhookRejected as rejected:
            counts[(name, f"rejected_{rejected.status_code}")] += 1
            return await _answer(send, rejected.status_code, {"detail": rejected.reason})
        stored = await ctx.inbound.store(name, events, now)
        counts[(name, "stored" if stored else ("duplicate" if events else "empty"))] += 1
        if stored and ctx.pipeline is not None:
            ctx.pipeline.wake()
        await _answer(send, 200, {"received": len(events), "stored": stored})


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None when it is larger than a webhook can be (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _answer(send: Send, status: int, content: dict[str, Any]) -> None:
    body = json.dumps(content).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _json_answer(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}


OPENAPI_PATHS: dict[str, Any] = {"/webhooks/{name}": {"post": {
    "tags": ["webhooks"],
    "summary": "Receive a provider webhook (LINE, Telegram, Messenger)",
    "description": "Signed by the provider (X-Line-Signature, X-Telegram-Bot-Api-Secret-Token or "
                   "X-Hub-Signature-256 over the raw body). Answered as soon as the events are stored.",
    "operationId": "receive_webhook",
    "parameters": [{"name": "name", "in": "path", "required": True,
                    "schema": {"type": "string", "enum": ["line", "telegram", "messenger"]}}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
    "responses": {"200": _json_answer("Stored: how many events came and how many were new"),
                  "400": _json_answer("Malformed body"),
                  "401": _json_answer("No signature"),
                  "403": _json_answer("Wrong signature"),
                  "404": _json_answer("The channel is not configured"),
                  "413": _json_answer("Body too large")}}}}


@router.get("/{name}", summary="Answer a provider's verification request (Messenger)")
async def verify(name: str, request: Request) -> PlainTextResponse:
    channel = _channel(request.app, name)
    if channel is None:
        return PlainTextResponse("channel is not configured", status_code=404)
    try:
        return PlainTextResponse(channel.verify_get(dict(request.query_params)))
    except WebhookRejected as rejected:
        return PlainTextResponse(rejected.reason, status_code=rejected.status_code)
