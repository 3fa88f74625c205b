"""What every messaging channel provides. One module per provider implements it; `registry.py` lists them.

A channel turns a provider's signed webhook into `ParsedEvent`s (never touching the engine), renders abstract
`Outbound` messages into provider API calls within the provider's limits, and performs one such call when the
dispatcher asks, reporting the outcome in provider-neutral terms.
"""
from __future__ import annotations

import hmac
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.messages import InboundEvent, Outbound
from bot.sendrules import RateLimits
from bot.settings import Settings


class WebhookRejected(Exception):
    """The request is not a genuine, well-formed webhook: answer with `status_code` and store nothing."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason


@dataclass
class ParsedEvent:
    """One provider event, ready to be stored before the webhook is answered."""

    user_id: str
    provider_event_id: str
    event: InboundEvent | None = None
    # Calls that belong to the channel's own UI (e.g. toggling a ✓ in place) and need no engine step.
    local_calls: list[dict[str, Any]] = field(default_factory=list)
    reply_token: str | None = None
    reply_token_expires_at: datetime | None = None


class SendOutcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # temporary: rate limit, provider error, network; try again later
    FAILED = "failed"  # permanent: the request itself is wrong
    UNREACHABLE = "unreachable"  # the worker blocked us or is gone: stop writing to them
    SKIPPED = "skipped"  # not allowed now (e.g. outside Messenger's 24-hour window)
    DEFERRED = "deferred"  # not now, without counting an attempt (quiet hours): try again at `retry_after`


@dataclass
class SendResult:
    outcome: SendOutcome
    reason: str = ""
    retry_after: float | None = None  # seconds the provider asked us to wait


@dataclass
class SendContext:
    """What the dispatcher knows about one outbox row besides its payload."""

    recipient: str
    idempotency_key: str
    reply_token: str | None
    reply_token_valid: bool
    attempts: int
    source: str
    last_inbound_at: datetime | None
    now: datetime


class Channel(ABC):
    name: str
    # How many people one call can carry the same messages to (LINE multicast: 500); 0 = one call each.
    max_multicast: int = 0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._limits: RateLimits | None = None

    @abstractmethod
    def enabled(self) -> bool:
        """True when the credentials it needs are configured."""

    @abstractmethod
    def parse_webhook(self, headers: Mapping[str, str], body: bytes, now: datetime) -> list[ParsedEvent]:
        """Verifies the signature on the raw body, then parses; raises WebhookRejected on anything wrong."""

    def verify_get(self, params: Mapping[str, str]) -> str:
        """Answers a provider's GET verification handshake (only Messenger has one)."""
        raise WebhookRejected(405, "this channel has no GET verification")

    @abstractmethod
    def render(self, outbound: list[Outbound]) -> list[dict[str, Any]]:
        """Provider API calls (as JSON-able dicts) that show these messages within the channel's limits."""

    @abstractmethod
    async def send(self, payload: dict[str, Any], ctx: SendContext) -> SendResult:
        """Performs one rendered call."""

    def rate_limits(self) -> RateLimits:
        """The provider's limits, shared by every send of this process (the channel object is shared)."""
        if self._limits is None:
            self._limits = self._make_rate_limits()
        return self._limits

    def _make_rate_limits(self) -> RateLimits:
        return RateLimits(0)

    def may_write_first(self, last_inbound_at: datetime | None, now: datetime) -> str | None:
        """Why the bot may not open a conversation with this person now (a campaign, a nudge), or None."""
        return None

    async def send_multicast(self, payload: dict[str, Any], recipients: list[str], retry_key: str) -> SendResult:
        """Performs one rendered call for many people at once (only where ``max_multicast`` > 0)."""
        raise NotImplementedError(f"{self.name} has no multicast")

    async def close(self) -> None:
        """Releases network clients."""


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    a_bytes = a.encode() if isinstance(a, str) else a
    b_bytes = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)


def split_text(text: str, limit: int) -> list[str]:
    """Splits a long text at paragraph, line or word boundaries so that no piece exceeds `limit` characters."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = max(rest.rfind("\n\n", 0, limit), rest.rfind("\n", 0, limit))
        if cut < limit // 3:
            cut = rest.rfind(" ", 0, limit)
        if cut < limit // 3:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces or [""]


def shorten(label: str, limit: int) -> str:
    label = " ".join(label.split())
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"
