"""Facebook Messenger through the Graph API's Send API (plain httpx): signed webhooks in, messages with quick
replies out, within the 24-hour messaging window (after it, only tagged counsellor replies may go)."""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx

from bot.sendrules import RateLimits
from bot.channels.base import (
    Channel,
    ParsedEvent,
    SendContext,
    SendOutcome,
    SendResult,
    WebhookRejected,
    constant_time_equal,
    shorten,
    split_text,
)
from bot.messages import InboundEvent, InboundKind, Outbound, OutboundKind

MAX_TEXT = 2000
MAX_QUICK_REPLIES = 13
MAX_TITLE = 20
WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
GET_STARTED = "GET_STARTED"
LOCALES = {"ja": "ja", "en": "en", "zh": "zh", "vi": "vi", "tl": "tl", "id": "id", "my": "my", "pt": "pt", "es": "es"}


class MessengerChannel(Channel):
    name = "messenger"

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self._http: httpx.AsyncClient | None = None

    def enabled(self) -> bool:
        s = self.settings
        return bool(s.messenger_app_secret and s.messenger_verify_token and s.messenger_page_access_token)

    def _make_rate_limits(self) -> RateLimits:
        return RateLimits(self.settings.messenger_rate_per_second)

    def may_write_first(self, last_inbound_at: datetime | None, now: datetime) -> str | None:
        # Outside 24 hours after the person's last message a page may send only tagged messages (a human
        # agent's answer); news and reminders are not allowed.
        if last_inbound_at is None or now - last_inbound_at > WINDOW:
            return "outside the 24-hour messaging window"
        return None

    def verify_get(self, params: Mapping[str, str]) -> str:
        if params.get("hub.mode") != "subscribe" or not constant_time_equal(
                params.get("hub.verify_token", ""), self.settings.messenger_verify_token):
            raise WebhookRejected(403, "verification failed")
        return params.get("hub.challenge", "")

    # ----- webhooks ---------------------------------------------------------------------------------
    def parse_webhook(self, headers: Mapping[str, str], body: bytes, now: datetime) -> list[ParsedEvent]:
        signature = headers.get("x-hub-signature-256")
        if not signature:
            raise WebhookRejected(401, "missing X-Hub-Signature-256")
        expected = "sha256=" + hmac.new(self.settings.messenger_app_secret.encode(), body, hashlib.sha256).hexdigest()
        if not constant_time_equal(signature, expected):
            raise WebhookRejected(403, "invalid signature")
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or data.get("object") != "page":
                raise ValueError("not a page webhook")
            entries = data.get("entry") or []
            parsed = [p for entry in entries for item in (entry.get("messaging") or [])
                      if (p := self._parse_item(item)) is not None]
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise WebhookRejected(400, "malformed webhook body") from exc
        return parsed

    @staticmethod
    def _parse_item(item: dict[str, Any]) -> ParsedEvent | None:
        psid = str(item["sender"]["id"])
        if "message" in item:
            msg = item["message"]
            if msg.get("is_echo"):
                return None  # our own message, echoed back
            mid = str(msg["mid"])
            quick = (msg.get("quick_reply") or {}).get("payload")
            if quick:
                event = _payload_event(quick)
            elif msg.get("text") is not None:
                event = InboundEvent(kind=InboundKind.TEXT, text=str(msg["text"]))
            elif any(a.get("type") == "location" for a in msg.get("attachments") or []):
                event = InboundEvent(kind=InboundKind.LOCATION)
            else:
                event = InboundEvent(kind=InboundKind.MEDIA)
            return ParsedEvent(user_id=psid, provider_event_id=mid, event=event)
        if "postback" in item:
            pb = item["postback"]
            event_id = str(pb.get("mid") or f"postback:{psid}:{item.get('timestamp')}")
            return ParsedEvent(user_id=psid, provider_event_id=event_id, event=_payload_event(str(pb["payload"])))
        return None  # delivery and read receipts

    # ----- rendering --------------------------------------------------------------------------------
    def render(self, outbound: list[Outbound]) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = []
        for out in outbound:
            pieces = split_text(out.text, MAX_TEXT)
            for piece in pieces[:-1]:
                calls.append({"message": {"text": piece}})
            message: dict[str, Any] = {"text": pieces[-1]}
            quick = self._quick_replies(out)
            if quick:
                message["quick_replies"] = quick
            calls.append({"message": message})
        return calls

    @staticmethod
    def _quick_replies(out: Outbound) -> list[dict[str, str]]:
        options = out.options
        if out.kind is OutboundKind.MULTISELECT:
            options = [o for o in options if o.id == "none"]
        elif len(options) > MAX_QUICK_REPLIES:
            options = [o for o in options if o.id == "skip"]
        numbered = {o.id: i for i, o in enumerate(out.options, 1)}
        return [{"content_type": "text",
                 "title": o.label if len(o.label) <= MAX_TITLE else shorten(f"{numbered[o.id]}. {o.label}", MAX_TITLE),
                 "payload": f"c:{o.id}"} for o in options]

    # ----- sending ----------------------------------------------------------------------------------
    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.settings.messenger_api_base_url.rstrip("/") + "/",
                                           timeout=httpx.Timeout(10.0))
        return self._http

    async def send(self, payload: dict[str, Any], ctx: SendContext) -> SendResult:
        body: dict[str, Any] = {"recipient": {"id": ctx.recipient}, "message": payload["message"]}
        since = ctx.now - ctx.last_inbound_at if ctx.last_inbound_at else None
        in_window = since is not None and since <= WINDOW
        if in_window:
            body["messaging_type"] = "RESPONSE" if ctx.source == "bot" else "UPDATE"
        elif ctx.source == "counsellor" and since is not None and since <= HUMAN_AGENT_WINDOW:
            body["messaging_type"] = "MESSAGE_TAG"
            body["tag"] = "HUMAN_AGENT"
        else:
            return SendResult(SendOutcome.SKIPPED, "outside the 24-hour messaging window")
        try:
            response = await self._client().post(
                "me/messages", params={"access_token": self.settings.messenger_page_access_token}, json=body)
        except httpx.HTTPError as exc:
            return SendResult(SendOutcome.RETRY, f"network: {type(exc).__name__}")
        if response.status_code == 200:
            return SendResult(SendOutcome.SENT)
        return _classify(response)

    async def user_language(self, user_id: str) -> str | None:
        try:
            response = await self._client().get(
                user_id, params={"fields": "locale", "access_token": self.settings.messenger_page_access_token})
            locale = str(response.json().get("locale", "")) if response.status_code == 200 else ""
        except (httpx.HTTPError, ValueError):
            return None
        return LOCALES.get(locale.split("_")[0].lower())

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def _payload_event(payload: str) -> InboundEvent:
    if payload == GET_STARTED:
        return InboundEvent(kind=InboundKind.FOLLOW)
    if payload.startswith("c:"):
        return InboundEvent(kind=InboundKind.CHOICE, choice_ids=[payload[2:]])
    return InboundEvent(kind=InboundKind.TEXT, text=payload)


def _classify(response: httpx.Response) -> SendResult:
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    code, subcode = error.get("code"), error.get("error_subcode")
    reason = f"{response.status_code} ({code}) {error.get('message', '')}"[:200]
    if response.status_code == 429 or code in (4, 32, 613) or response.status_code >= 500:
        retry_after = response.headers.get("retry-after")
        return SendResult(SendOutcome.RETRY, reason, float(retry_after) if retry_after else None)
    if code == 10 or subcode == 2018278:
        return SendResult(SendOutcome.SKIPPED, "outside the 24-hour messaging window")
    if code == 551 or subcode in (1545041, 2018001, 2018108):
        return SendResult(SendOutcome.UNREACHABLE, reason)
    return SendResult(SendOutcome.FAILED, reason)
