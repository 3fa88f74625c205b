"""When counsellors are at work: a worker asking for a person is told when to expect an answer."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from bot.messages import CounsellorHours

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class OfficeHoursError(ValueError):
    pass


@dataclass(frozen=True)
class OfficeHours:
    days: tuple[int, ...]  # 0 = Monday
    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, spec: str, timezone: str) -> OfficeHours:
        """``"mon-fri 09:00-18:00"`` or ``"mon,wed,sat 10:00-16:00"`` (in the service's time zone)."""
        match = re.fullmatch(r"\s*([a-z,\-]+)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", spec.lower())
        if not match:
            raise OfficeHoursError(f"office hours {spec!r}: expected e.g. 'mon-fri 09:00-18:00'")
        days: list[int] = []
        for part in match.group(1).split(","):
            ends = part.split("-")
            if not all(e in DAYS for e in ends) or len(ends) > 2:
                raise OfficeHoursError(f"office hours {spec!r}: unknown day in {part!r}")
            first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
            days.extend(range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)])
        start = time(int(match.group(2)), int(match.group(3)))
        end = time(int(match.group(4)), int(match.group(5)))
        if end <= start:
            raise OfficeHoursError(f"office hours {spec!r}: the end must come after the start")
        return cls(tuple(sorted(set(days))), start, end, ZoneInfo(timezone))

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(self.zone)
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def for_worker(self, now: datetime) -> CounsellorHours:
        open_now = self.is_open(now)
        known = _HOURS_SHOWN.get((self, open_now))
        if known is None:  # the same two answers all day: made once, shared by every turn (never changed)
            known = _HOURS_SHOWN[(self, open_now)] = CounsellorHours(
                open_now=open_now, days=list(self.days), start=self.start.strftime("%H:%M"),
                end=self.end.strftime("%H:%M"))
        return known


_HOURS_SHOWN: dict[tuple[OfficeHours, bool], CounsellorHours] = {}
