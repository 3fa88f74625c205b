"""Provider webhooks: verify the signature on the raw body, parse, drop duplicates, store, answer at once.
The engine step and the replies happen afterwards in the background pipeline."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from admin_api.routes.ops import count_webhook
from bot.channels.base import WebhookRejected

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _channel(request: Request, name: str):  # type: ignore[no-untyped-def]
    channel = request.app.state.ctx.channels.get(name)
    return channel if channel is not None and channel.enabled() else None


@router.post("/{name}", summary="Receive a provider webhook (LINE, Telegram, Messenger)")
async def receive(name: str, request: Request) -> JSONResponse:
    channel = _channel(request, name)
    if channel is None:
        return JSONResponse(status_code=404, content={"detail": f"channel {name!r} is not configured"})
    ctx = request.app.state.ctx
    body = await request.body()
    now = ctx.service.clock()
    try:
        events = channel.parse_webhook({k.lower(): v for k, v in request.headers.items()}, body, now)
    except WebhookRejected as rejected:
        count_webhook(request, name, f"rejected_{rejected.status_code}")
        return JSONResponse(status_code=rejected.status_code, content={"detail": rejected.reason})
    stored = await ctx.inbound.store(name, events, now)
    count_webhook(request, name, "stored" if stored else ("duplicate" if events else "empty"))
    if stored and ctx.pipeline is not None:
        ctx.pipeline.wake()
    return JSONResponse(status_code=200, content={"received": len(events), "stored": stored})


@router.get("/{name}", summary="Answer a provider's verification request (Messenger)")
async def verify(name: str, request: Request) -> PlainTextResponse:
    channel = _channel(request, name)
    if channel is None:
        return PlainTextResponse("channel is not configured", status_code=404)
    try:
        return PlainTextResponse(channel.verify_get(dict(request.query_params)))
    except WebhookRejected as rejected:
        return PlainTextResponse(rejected.reason, status_code=rejected.status_code)
