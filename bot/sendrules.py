"""Rules for messages the worker did not ask for (nudges, campaigns): never at night, never faster than a
provider allows. A worker's own conversation is answered at any hour."""
from __future__ import annotations

import asyncio
import re
import time as _time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

UNSOLICITED = ("campaign", "nudge")  # outbox sources that wait for the end of quiet hours


class QuietHoursError(ValueError):
    pass


@dataclass(frozen=True)
class QuietHours:
    """A nightly span in local time (``"21:00-08:00"``) in which unsolicited messages wait; ``""`` = none."""

    start: time | None
    end: time | None
    zone: ZoneInfo

    @classmethod
    def parse(cls, spec: str, timezone: str) -> QuietHours:
        zone = ZoneInfo(timezone)
        if not spec.strip():
            return cls(None, None, zone)
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", spec)
        if not match:
            raise QuietHoursError(f"quiet hours {spec!r}: expected e.g. '21:00-08:00'")
        hours = [int(match.group(i)) for i in (1, 3)]
        minutes = [int(match.group(i)) for i in (2, 4)]
        if any(h > 23 for h in hours) or any(m > 59 for m in minutes):
            raise QuietHoursError(f"quiet hours {spec!r}: not a time of day")
        start, end = time(hours[0], minutes[0]), time(hours[1], minutes[1])
        if start == end:
            raise QuietHoursError(f"quiet hours {spec!r}: start and end are the same")
        return cls(start, end, zone)

    def is_quiet(self, now: datetime) -> bool:
        if self.start is None or self.end is None:
            return False
        local = now.astimezone(self.zone).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # the span crosses midnight

    def next_allowed(self, now: datetime) -> datetime:
        """``now`` if sending is allowed now, else the end of this quiet span."""
        if not self.is_quiet(now):
            return now
        assert self.end is not None
        local = now.astimezone(self.zone)
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(now.tzinfo)


def retry_delay(attempts: int, retry_after: float | None, base: float, most: float) -> float:
    """Seconds before the next try: what the provider asked for, else doubling from ``base`` up to ``most``."""
    if retry_after is not None:
        return max(0.0, retry_after)
    return min(most, base * (2 ** (attempts - 1)))


class TokenBucket:
    """At most ``rate`` acquisitions a second on average, with bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float | None = None,
                 monotonic: Callable[[], float] = _time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, burst if burst is not None else rate)
        self.tokens = self.capacity
        self.monotonic = monotonic
        self.updated = monotonic()

    def _refill(self) -> None:
        now = self.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait_time(self, n: float = 1.0) -> float:
        """Seconds until ``n`` tokens are there (0 if they are)."""
        self._refill()
        return 0.0 if self.tokens >= n else (n - self.tokens) / self.rate

    def take(self, n: float = 1.0) -> bool:
        self._refill()
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False

    async def acquire(self, n: float = 1.0) -> None:
        if self.rate <= 0:
            return
        while not self.take(n):
            await asyncio.sleep(max(self.wait_time(n), 0.001))


class RateLimits:
    """A channel's overall bucket and one small bucket per chat (Telegram: 1 message a second in a chat)."""

    MAX_CHATS = 50_000  # per-chat buckets kept; the oldest are forgotten (a full bucket is the same as none)

    def __init__(self, overall: float, per_chat: float = 0.0, per_chat_burst: float = 1.0,
                 burst: float | None = None) -> None:
        self.overall = TokenBucket(overall, burst) if overall > 0 else None
        self.per_chat_rate = per_chat
        self.per_chat_burst = per_chat_burst
        self._chats: OrderedDict[str, TokenBucket] = OrderedDict()

    async def acquire(self, chat: str | None = None, n: int = 1) -> None:
        if chat is not None and self.per_chat_rate > 0:
            bucket = self._chats.get(chat)
            if bucket is None:
                bucket = self._chats[chat] = TokenBucket(self.per_chat_rate, self.per_chat_burst)
                if len(self._chats) > self.MAX_CHATS:
                    self._chats.popitem(last=False)
            else:
                self._chats.move_to_end(chat)
            await bucket.acquire()
        if self.overall is not None:
            await self.overall.acquire(n)
