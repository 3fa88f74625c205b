"""A burst of webhooks at one moment (a LINE group chat going off, a provider redelivering a backlog): each one is
answered only once its events are committed, they share a few transactions instead of one each, and an event
that comes twice in the burst is stored once."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import event
from sqlmodel import select

from bot.channels.base import ParsedEvent
from bot.messages import InboundEvent, InboundKind
from bot.pipeline import InboundStore
from bot.store.models import InboundQueue

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _text(user: str, event_id: str, text: str) -> ParsedEvent:
    return ParsedEvent(user_id=user, provider_event_id=event_id, event=InboundEvent(kind=InboundKind.TEXT, text=text))


def test_a_burst_of_webhooks_shares_transactions_and_each_answer_follows_its_commit(database):
    store = InboundStore(database)
    inserts: list[str] = []

    def count_inserts(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO INBOUND_QUEUE"):
            inserts.append(statement)

    event.listen(database.engine, "before_cursor_execute", count_inserts)
    committed_before_answer: list[bool] = []

    async def webhook(n: int) -> int:
        stored = await store.store("line", [_text(f"U{n % 10:032x}", f"evt-{n}", f"message {n}")], NOW)
        with database.session() as s:  # what the provider's 200 promises: the event is in the database
            committed_before_answer.append(
                s.exec(select(InboundQueue.id).where(InboundQueue.provider_event_id == f"evt-{n}")).first()
                is not None)
        return stored

    async def burst() -> list[int]:
        redelivered = store.store("line", [_text("U0", "evt-7", "message 7")], NOW)
        return await asyncio.gather(*(webhook(n) for n in range(60)), redelivered)

    results = asyncio.run(burst())
    assert sum(results) == 60, "sixty events stored, the redelivered one once"
    assert all(committed_before_answer)
    assert len(inserts) <= 10, f"{len(inserts)} writes for a burst of 61 webhooks"
    with database.session() as s:
        stored = s.exec(select(InboundQueue.provider_event_id)).all()
    assert sorted(stored) == sorted(f"evt-{n}" for n in range(60))


def test_when_the_database_fails_every_waiting_webhook_gets_the_error_and_the_next_burst_is_stored(database):
    store = InboundStore(database)
    broken = {"on": True}

    def fail_while_broken(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if broken["on"] and "inbound_queue" in statement and statement.lstrip().upper().startswith("INSERT"):
            raise RuntimeError("disk full")

    event.listen(database.engine, "before_cursor_execute", fail_while_broken)

    async def burst(prefix: str) -> list[object]:
        return await asyncio.gather(*(store.store("line", [_text("U1", f"{prefix}-{n}", "hi")], NOW)
                                      for n in range(20)), return_exceptions=True)

    failed = asyncio.run(burst("a"))
    assert all(isinstance(r, Exception) for r in failed), "no webhook is told 200 for an event that was not stored"
    broken["on"] = False
    assert asyncio.run(burst("b")) == [1] * 20, "the provider's redelivery is stored"
    with database.session() as s:
        assert len(s.exec(select(InboundQueue.id)).all()) == 20
