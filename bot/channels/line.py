"""LINE Messaging API with line-bot-sdk v3: signed webhooks in, replies (or pushes with a retry key) out."""
from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from linebot.v3 import SignatureValidator
from linebot.v3.messaging import AsyncApiClient, AsyncMessagingApi, Configuration
from linebot.v3.messaging.exceptions import ApiException

from bot.sendrules import RateLimits
from bot.channels.base import (
    Channel,
    ParsedEvent,
    SendContext,
    SendOutcome,
    SendResult,
    WebhookRejected,
    shorten,
    split_text,
)
from bot.messages import InboundEvent, InboundKind, Outbound, OutboundKind

MAX_TEXT = 5000
MAX_MESSAGES_PER_CALL = 5
MAX_QUICK_REPLIES = 13
MAX_LABEL = 20
MAX_POSTBACK_DATA = 300
REPLY_TOKEN_LIFETIME = timedelta(seconds=50)  # LINE allows about a minute; keep a margin
LINE_LANGUAGES = {"ja": "ja", "en": "en", "zh": "zh", "zh-hans": "zh", "zh-hant": "zh", "zh-tw": "zh", "vi": "vi",
                  "tl": "tl", "fil": "tl", "id": "id", "in": "id", "my": "my", "pt": "pt", "pt-br": "pt", "es": "es"}


REPLY_PATH = "/v2/bot/message/reply"
PUSH_PATH = "/v2/bot/message/push"
MULTICAST_PATH = "/v2/bot/message/multicast"


class _RenderedBody(dict):  # type: ignore[type-arg]
    """A request body already in the JSON shape of LINE's API (what `LineChannel.render` made)."""


class _LineApiClient(AsyncApiClient):
    def sanitize_for_serialization(self, obj: Any) -> Any:
        # The SDK walks every nested value of a body to turn its models into JSON; ours are JSON already, and the
        # walk cost a tenth of a sender's CPU per message.
        if type(obj) is _RenderedBody:
            return obj
        return super().sanitize_for_serialization(obj)


class LineChannel(Channel):
    name = "line"

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self._api: AsyncMessagingApi | None = None
        self._client: AsyncApiClient | None = None
        self._multicast_limits: RateLimits | None = None

    def enabled(self) -> bool:
        return bool(self.settings.line_channel_secret and self.settings.line_channel_access_token)

    # ----- webhooks ---------------------------------------------------------------------------------
    def parse_webhook(self, headers: Mapping[str, str], body: bytes, now: datetime) -> list[ParsedEvent]:
        signature = headers.get("x-line-signature")
        if not signature:
            raise WebhookRejected(401, "missing X-Line-Signature")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WebhookRejected(400, "body is not UTF-8") from exc
        if not SignatureValidator(self.settings.line_channel_secret).validate(text, signature):  # constant time
            raise WebhookRejected(403, "invalid signature")
        # The fields we use are read from the JSON itself: the SDK's webhook models (pydantic v1) took more CPU
        # than the rest of receiving a webhook, on the path of every message of every worker.
        try:
            events = json.loads(text)["events"]
            if not isinstance(events, list) or not all(isinstance(ev, dict) for ev in events):
                raise TypeError("events is not a list of objects")
        except (ValueError, TypeError, KeyError) as exc:
            raise WebhookRejected(400, "malformed webhook body") from exc
        parsed: list[ParsedEvent] = []
        for ev in events:
            source = ev.get("source")
            user_id = source.get("userId") if isinstance(source, dict) else None
            event_id = ev.get("webhookEventId")
            if not isinstance(user_id, str) or not user_id or not isinstance(event_id, str) or not event_id:
                continue  # group chats and events without a person: nothing for us
            inbound = self._inbound(ev)
            if inbound is None:
                continue
            token = ev.get("replyToken") if isinstance(ev.get("replyToken"), str) else None
            parsed.append(ParsedEvent(user_id=user_id, provider_event_id=event_id, event=inbound, reply_token=token,
                                      reply_token_expires_at=now + REPLY_TOKEN_LIFETIME if token else None))
        return parsed

    @staticmethod
    def _inbound(ev: dict[str, Any]) -> InboundEvent | None:
        kind = ev.get("type")
        if kind == "message":
            message = ev.get("message")
            if not isinstance(message, dict):
                return None
            if message.get("type") == "text":
                text = message.get("text")
                return InboundEvent(kind=InboundKind.TEXT, text=text if isinstance(text, str) else "")
            if message.get("type") == "location":
                return InboundEvent(kind=InboundKind.LOCATION)
            return InboundEvent(kind=InboundKind.MEDIA)  # sticker, image, video, audio, file
        if kind == "postback":
            postback = ev.get("postback")
            data = postback.get("data") if isinstance(postback, dict) else None
            data = data if isinstance(data, str) else ""
            if data.startswith("choice:"):
                return InboundEvent(kind=InboundKind.CHOICE, choice_ids=[i for i in data[7:].split(",") if i])
            return InboundEvent(kind=InboundKind.TEXT, text=data)
        if kind == "follow":
            return InboundEvent(kind=InboundKind.FOLLOW)
        if kind == "unfollow":
            return InboundEvent(kind=InboundKind.UNFOLLOW)
        return None

    # ----- rendering --------------------------------------------------------------------------------
    def render(self, outbound: list[Outbound]) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for out in outbound:
            pieces = split_text(out.text, MAX_TEXT)
            for piece in pieces[:-1]:
                messages.append({"type": "text", "text": piece})
            last: dict[str, Any] = {"type": "text", "text": pieces[-1]}
            quick = self._quick_replies(out)
            if quick:
                last["quickReply"] = {"items": quick}
            messages.append(last)
        return [{"messages": messages[i:i + MAX_MESSAGES_PER_CALL]}
                for i in range(0, len(messages), MAX_MESSAGES_PER_CALL)]

    @staticmethod
    def _quick_replies(out: Outbound) -> list[dict[str, Any]]:
        """Buttons under the message. LINE shows at most 13 with 20-character labels: longer lists stay as the
        numbered text (the worker types the number); a checklist offers its "none" and the rest by number."""
        options = out.options
        if out.kind is OutboundKind.MULTISELECT:
            options = [o for o in options if o.id == "none"]
        elif len(options) > MAX_QUICK_REPLIES:
            options = [o for o in options if o.id == "skip"]
        items = []
        numbered = {o.id: i for i, o in enumerate(out.options, 1)}
        for o in options:
            label = o.label if len(o.label) <= MAX_LABEL else shorten(f"{numbered[o.id]}. {o.label}", MAX_LABEL)
            data = f"choice:{o.id}"
            if len(data) > MAX_POSTBACK_DATA:
                continue
            items.append({"type": "action", "action": {"type": "postback", "label": label, "data": data,
                                                        "displayText": shorten(o.label, 300)}})
        return items

    # ----- sending ----------------------------------------------------------------------------------
    def _messaging(self) -> AsyncMessagingApi:
        if self._api is None:
            config = Configuration(host=self.settings.line_api_base_url.rstrip("/"),
                                   access_token=self.settings.line_channel_access_token)
            self._client = _LineApiClient(config)
            self._api = AsyncMessagingApi(self._client)
            if not urllib.request.getproxies():
                # The SDK's session trusts the environment, so aiohttp looked for proxies and read ~/.netrc at
                # every call (a tenth of a sender's time); with no proxy configured there is nothing to find.
                session = getattr(getattr(self._client, "rest_client", None), "pool_manager", None)
                if isinstance(session, aiohttp.ClientSession) and hasattr(session, "_trust_env"):
                    session._trust_env = False
        return self._api

    async def _post(self, path: str, body: dict[str, Any], retry_key: str | None = None) -> None:
        """The SDK's own client (auth, headers, errors as ApiException), given the JSON we rendered: building
        the SDK's request models from it and serialising them back cost more than the whole engine step."""
        self._messaging()
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if retry_key:
            headers["X-Line-Retry-Key"] = retry_key
        await self._client.call_api(  # type: ignore[union-attr]
            path, "POST", header_params=headers, body=_RenderedBody(body), response_types_map={},
            auth_settings=["Bearer"], _return_http_data_only=False,
            _preload_content=True)  # errors raise ApiException only when preloaded

    async def send(self, payload: dict[str, Any], ctx: SendContext) -> SendResult:
        messages = payload["messages"]
        try:
            # A reply is free and immediate, but a token works once: only on a first attempt.
            if ctx.reply_token and ctx.reply_token_valid and ctx.attempts == 0:
                try:
                    await self._post(REPLY_PATH, {"replyToken": ctx.reply_token, "messages": messages})
                    return SendResult(SendOutcome.SENT)
                except ApiException as exc:
                    if exc.status != 400:
                        return _classify(exc)
                    # expired or used token: fall through to a push
            await self._post(PUSH_PATH, {"to": ctx.recipient, "messages": messages}, ctx.idempotency_key)
            return SendResult(SendOutcome.SENT)
        except ApiException as exc:
            return _classify(exc)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return SendResult(SendOutcome.RETRY, f"network: {type(exc).__name__}")

    max_multicast = 500  # LINE's limit of user ids in one multicast call

    def _make_rate_limits(self) -> RateLimits:
        return RateLimits(self.settings.line_rate_per_second)

    def multicast_limits(self) -> RateLimits:
        if self._multicast_limits is None:
            self._multicast_limits = RateLimits(self.settings.line_multicast_rate_per_second)
        return self._multicast_limits

    async def send_multicast(self, payload: dict[str, Any], recipients: list[str], retry_key: str) -> SendResult:
        """The same messages to up to 500 people in one call. LINE accepts a retry key once, so sending the
        same batch again after a crash is answered 409 and nobody gets a second copy."""
        await self.multicast_limits().acquire()
        try:
            await self._post(MULTICAST_PATH, {"to": recipients, "messages": payload["messages"]}, retry_key)
            return SendResult(SendOutcome.SENT)
        except ApiException as exc:
            return _classify(exc)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return SendResult(SendOutcome.RETRY, f"network: {type(exc).__name__}")

    async def user_language(self, user_id: str) -> str | None:
        try:
            profile = await self._messaging().get_profile(user_id)
        except (ApiException, aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return None
        return LINE_LANGUAGES.get((getattr(profile, "language", None) or "").lower())

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client, self._api = None, None


def _classify(exc: ApiException) -> SendResult:
    status = exc.status or 0
    reason = _reason(exc)
    if status == 409:
        return SendResult(SendOutcome.SENT, "retry key already accepted")  # an earlier attempt got through
    if status == 429 or status >= 500:
        return SendResult(SendOutcome.RETRY, f"{status} {reason}", _retry_after(exc))
    return SendResult(SendOutcome.FAILED, f"{status} {reason}")


def _reason(exc: ApiException) -> str:
    try:
        body = exc.body.decode() if isinstance(exc.body, bytes) else (exc.body or "")
        return str(json.loads(body).get("message", ""))[:200]
    except (ValueError, AttributeError):
        return str(exc.reason or "")[:200]


def _retry_after(exc: ApiException) -> float | None:
    headers = exc.headers or {}
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
        return float(value) if value else None
    except (TypeError, ValueError):
        return None
