"""While the bot works out its replies to a batch of messages, workers go on writing: their webhooks are
stored and acknowledged without waiting for that batch (on SQLite the batch takes the write lock only to write
what it decided), and what the batch decided never overwrites a change made meanwhile."""
from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bot.channels.base import ParsedEvent
from bot.messages import InboundEvent, InboundKind
from bot.pipeline import InboundStore
from bot.store.db import Database, WroteBeforeWriting
from bot.store.models import ConversationStateRow, InboundQueue, Worker
from bot.store.repository import ConversationRepository, StaleState

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def webhook_from(user: str, event_id: str) -> ParsedEvent:
    return ParsedEvent(user_id=user, provider_event_id=event_id,
                       event=InboundEvent(kind=InboundKind.TEXT, text="hello"))


def test_a_webhook_is_stored_while_the_bot_is_still_deciding_its_replies(database):
    store = InboundStore(database)
    stored = threading.Event()

    def webhook_arrives() -> None:
        asyncio.run(store.store("line", [webhook_from("U-late", "ev-late")], NOW))
        stored.set()

    with database.read_then_write() as (s, write_now):
        s.exec(select(Worker)).all()  # the batch reads what it needs
        threading.Thread(target=webhook_arrives, daemon=True).start()
        assert stored.wait(10), "the webhook waited for the batch being stepped"
        write_now()
        s.add(Worker(channel="line", channel_user_id="U-stepped", language="en", created_at=NOW,
                     last_active_at=NOW))

    with database.session() as s:
        assert [w.channel_user_id for w in s.exec(select(Worker)).all()] == ["U-stepped"]
        assert [e.provider_event_id for e in s.exec(select(InboundQueue)).all()] == ["ev-late"]


def test_what_the_bot_decided_is_not_written_over_a_counsellors_change_made_meanwhile(database):
    with database.session() as s:
        worker = Worker(channel="line", channel_user_id="U1", language="en", created_at=NOW, last_active_at=NOW)
        s.add(worker)
        s.flush()
        s.add(ConversationStateRow(worker_id=worker.id, state={"step": "sheet.Q3"}, version=1, updated_at=NOW))
        worker_id = worker.id

    with pytest.raises(StaleState), database.read_then_write() as (s, write_now):
        repo = ConversationRepository(s)
        read = repo.load_states([worker_id])[worker_id]
        with database.session() as counsellor:  # resumes the bot while the batch is being decided
            row = counsellor.get(ConversationStateRow, worker_id)
            row.state, row.version = {"step": "menu", "resumed": True}, row.version + 1
            counsellor.add(row)
        repo.save_state_row(read, worker_id, {"step": "sheet.Q4"}, NOW)
        write_now()
        repo.write_new_rows()

    with database.session() as s:
        assert s.get(ConversationStateRow, worker_id).state == {"step": "menu", "resumed": True}


def test_on_sqlite_a_write_before_the_decision_keeps_nothing_and_the_work_can_be_done_again(tmp_path):
    database = Database(f"sqlite:///{tmp_path}/mirai.db", encryption_keys="")
    database.migrate()

    def add_worker(s) -> None:  # type: ignore[no-untyped-def]
        s.add(Worker(channel="line", channel_user_id="U1", language="en", created_at=NOW, last_active_at=NOW))
        s.flush()

    with pytest.raises(WroteBeforeWriting), database.read_then_write() as (s, _write_now):
        add_worker(s)
    with database.session() as s:
        assert s.exec(select(Worker)).all() == []

    with database.read_then_write() as (s, write_now):  # the same pooled connection writes again
        write_now()
        add_worker(s)
    with database.session() as s:
        assert [w.channel_user_id for w in s.exec(select(Worker)).all()] == ["U1"]
