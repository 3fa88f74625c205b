"""A small world for nudges and campaigns: real channels pointed at fake providers, a real database, the
conversation service and the dispatcher, all on a clock the test moves."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from bot.campaigns import CampaignService
from bot.channels.registry import build_channels
from bot.messages import InboundEvent, InboundKind, Outbound
from bot.nudges import NudgePlanner
from bot.outbox import Dispatcher, Outbox
from bot.service import ConversationService
from bot.store.models import Worker
from tests.channels.conftest import channel_settings, fakes  # noqa: F401 (fixture)

# 10:00 in Tokyo on a Tuesday: inside the day, outside the quiet hours.
MORNING = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set_tokyo(self, day_offset: int, hour: int, minute: int = 0) -> datetime:
        """A time of day in Tokyo, `day_offset` days after MORNING's date."""
        self.now = (MORNING + timedelta(days=day_offset)).replace(hour=0) + timedelta(
            hours=hour - 9, minutes=minute)
        return self.now


class World:
    def __init__(self, database: Any, fakes: SimpleNamespace, **settings: Any) -> None:  # noqa: F811
        self.db = database
        self.fakes = fakes
        self.clock = Clock(MORNING)
        self.settings = channel_settings(database.url, fakes, **settings)
        self.channels = build_channels(self.settings)
        self.outbox = Outbox(self.channels)
        self.service = ConversationService(database, outbox=self.outbox, clock=self.clock)
        self.nudges = NudgePlanner(database, self.service, self.settings, self.clock)
        self.campaigns = CampaignService(database, self.outbox, self.settings, self.clock, self.service.book)

    # ----- workers talking ----------------------------------------------------------------------------
    def say(self, user: str, text: str = "", channel: str = "line", **event: Any) -> list[Outbound]:
        kind = InboundKind(event.pop("kind", "text"))
        return self.service.handle(channel, user, InboundEvent(kind=kind, text=text, **event))

    def press(self, user: str, *ids: str, channel: str = "line") -> list[Outbound]:
        return self.service.handle(channel, user, InboundEvent(kind=InboundKind.CHOICE, choice_ids=list(ids)))

    def join(self, user: str, lang: str = "vi", channel: str = "line", **profile: str) -> None:
        """Follows the bot, agrees to the privacy notice, answers or skips the profile questions."""
        self.service.handle(channel, user, InboundEvent(kind=InboundKind.FOLLOW, language_hint=lang,
                                                        language_chosen=True))
        self.press(user, "agree", channel=channel)
        for step in ("employer_code", "residence_status", "prefecture"):
            if step in profile:
                self.say(user, profile[step], channel=channel)
            else:
                self.press(user, "skip", channel=channel)

    def finish_sheet(self, user: str, channel: str = "line") -> None:
        for q in self.service.book.questions:
            if q.type == "checklist":
                self.press(user, "none", channel=channel)
            elif q.type == "amount":
                self.say(user, "0", channel=channel)
            elif q.type == "free_text":
                self.press(user, "skip", channel=channel)
            else:
                self.press(user, "no" if q.risk_answer == "yes" or q.id == "Q13" else "yes", channel=channel)

    def worker(self, user: str, channel: str = "line") -> Worker:
        with self.db.session() as s:
            from sqlmodel import select

            return s.exec(select(Worker).where(Worker.channel == channel, Worker.channel_user_id == user)).one()

    # ----- sending ------------------------------------------------------------------------------------
    def dispatch(self) -> None:
        """Sends everything that is due now, the way `mirai dispatch` does, and lets the fakes count it."""
        async def run() -> None:
            dispatcher = Dispatcher(self.db, self.channels, self.settings, self.clock)
            try:
                for _ in range(200):
                    if await dispatcher.run_once() == 0:
                        break
            finally:
                await dispatcher.close()
        asyncio.run(run())
        self.channels = build_channels(self.settings)  # the closed clients are rebuilt on next use
        self.outbox.channels = self.channels


@pytest.fixture
def world(database, fakes) -> Iterator[World]:  # type: ignore[no-untyped-def]  # noqa: F811
    yield World(database, fakes)


def populate(db, count: int, *, channel: str = "line", language: str = "vi", start: int = 0,  # type: ignore[no-untyped-def]
             last_inbound_at=None, **fields: Any) -> list[str]:
    """Workers who joined earlier and agreed to the privacy notice (the state a finished onboarding leaves),
    written in bulk: a campaign's audience is thousands of people."""
    from sqlalchemy import insert

    now = MORNING - timedelta(days=3)
    ids = [f"U{start + i:032x}" if channel == "line" else f"{channel[:2]}{start + i:08d}" for i in range(count)]
    rows = [dict(channel=channel, channel_user_id=uid, language=language, consent=True, consent_at=now,
                 employer_code=fields.get("employer_code"), residence_status=fields.get("residence_status"),
                 prefecture=fields.get("prefecture"), reachable=fields.get("reachable", True),
                 opted_out=fields.get("opted_out", False), created_at=now, last_active_at=last_inbound_at or now,
                 last_inbound_at=last_inbound_at or now) for uid in ids]
    if fields.get("consent") is not None:
        for row in rows:
            row["consent"] = fields["consent"]
    with db.session() as s:
        s.execute(insert(Worker.__table__), rows)
        s.commit()
    return ids
