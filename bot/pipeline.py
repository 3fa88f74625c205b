"""From stored webhook events to sent replies, in the background: the webhook only verifies, stores and
answers; this loop steps each stored event in arrival order (one at a time, so one worker's messages never
overtake each other) and the dispatcher sends the outbox."""
from __future__ import annotations

import asyncio
import logging
import threading
import time
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy import Row, update
from sqlmodel import Session, select

from bot.channels.base import Channel, ParsedEvent
from bot.messages import InboundEvent, InboundKind
from bot.outbox import Clock, Dispatcher, DispatchLocks, Outbox, Wakeup
from bot.service import ConversationService, Turn
from bot.store.db import Database, WroteBeforeWriting
from bot.store.models import InboundQueue
from bot.store.repository import ConversationRepository, StaleState

log = logging.getLogger("mirai.pipeline")


class _Waiting:
    """One webhook's rows, waiting (as a future in the event loop) to be written with those of other webhooks
    arriving at the same moment."""

    def __init__(self, rows: list[dict[str, Any]], answered: asyncio.Future[None]) -> None:
        self.rows = rows
        self.answered = answered
        self.stored = 0
        self.error: BaseException | None = None


class InboundStore:
    """The webhook side: store verified events, dropping the ones already seen.

    Group commit: webhooks that arrive while a write is under way wait as futures in the event loop, and one
    writer task at a time takes everything queued into the next transaction, in a thread (one thread hop per
    batch, not one per webhook); every caller still returns only after its own rows are committed (the provider
    gets its 200 for stored events only)."""

    # PostgreSQL makes every commit wait for the disk, and on our 2-CPU machine each of those flushes cost about
    # as much CPU as storing a dozen events: while webhooks keep coming (a write ended moments ago), the writer
    # waits a few milliseconds so that one commit carries several of them. A lone webhook is written at once.
    # (SQLite, in WAL mode with synchronous=NORMAL, does not flush at commit.)
    GATHER_SECONDS = 0.004
    BUSY_WITHIN_SECONDS = 0.05

    def __init__(self, db: Database) -> None:
        self.db = db
        self._loop_queues: dict[asyncio.AbstractEventLoop, list[_Waiting]] = {}
        self._loop_writers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._last_write_ended = float("-inf")  # time.monotonic()

    async def store(self, channel: str, events: list[ParsedEvent], now: datetime) -> int:
        """Returns once the events are committed: how many of them were new."""
        if not events:
            return 0
        loop = asyncio.get_running_loop()
        mine = _Waiting([dict(channel=channel, channel_user_id=e.user_id, provider_event_id=e.provider_event_id,
                              event={"event": e.event.model_dump(mode="json") if e.event else None,
                                     "local_calls": e.local_calls},
                              reply_token=e.reply_token, reply_token_expires_at=e.reply_token_expires_at,
                              status="pending", received_at=now) for e in events], loop.create_future())
        self._loop_queues.setdefault(loop, []).append(mine)
        writer = self._loop_writers.get(loop)
        if writer is None or writer.done():
            self._loop_writers[loop] = loop.create_task(self._write_queued(loop))
        await asyncio.shield(mine.answered)  # a client hanging up does not cancel the others' commit
        if mine.error is not None:
            raise mine.error
        return mine.stored

    async def _write_queued(self, loop: asyncio.AbstractEventLoop) -> None:
        queue = self._loop_queues[loop]
        while queue:
            if self.db.is_postgres and time.monotonic() - self._last_write_ended < self.BUSY_WITHIN_SECONDS:
                await asyncio.sleep(self.GATHER_SECONDS)
            batch, queue[:] = list(queue), []
            try:
                await asyncio.to_thread(self._write, batch)
            except BaseException as exc:  # noqa: BLE001 (every waiting webhook answers 500; the writer goes on)
                for waiting in batch:
                    waiting.error, waiting.stored = exc, 0
            self._last_write_ended = time.monotonic()
            for waiting in batch:
                if not waiting.answered.done():
                    waiting.answered.set_result(None)

    def _write(self, batch: list[_Waiting]) -> None:
        try:
            rows = [row for waiting in batch for row in waiting.rows]
            insert = pg_insert if self.db.is_postgres else sqlite_insert
            with self.db.transaction() as conn:
                # One statement: the unique constraint drops what is stored already (also by another process
                # meanwhile, and a redelivery inside this very batch), and RETURNING tells which rows are new.
                # A SELECT of the known ids before the INSERT cost a round trip and a plan per batch size.
                stored = conn.execute(insert(InboundQueue).on_conflict_do_nothing(
                    index_elements=["channel", "provider_event_id"]).returning(
                    InboundQueue.channel, InboundQueue.provider_event_id), rows).all()
            new = set(map(tuple, stored))
            for waiting in batch:
                for row in waiting.rows:
                    key = (row["channel"], row["provider_event_id"])
                    if key in new:
                        new.discard(key)  # a second copy in the same batch is not new
                        waiting.stored += 1
        except BaseException as exc:  # noqa: BLE001 (handed to every waiting webhook: each answers 500)
            for waiting in batch:
                waiting.error, waiting.stored = exc, 0


CONVERSATION_LOCKS = 7_303  # advisory-lock namespace of the inbound processors (the dispatchers use 7_301)


# A stored webhook event as the processor reads it: InboundQueue's columns, without building ORM objects.
PENDING_COLUMNS = (InboundQueue.id, InboundQueue.channel, InboundQueue.channel_user_id,
                   InboundQueue.provider_event_id, InboundQueue.event, InboundQueue.reply_token,
                   InboundQueue.reply_token_expires_at)
PendingEvent = Row[tuple[int, str, str, str, dict[str, Any], str | None, datetime | None]]
# Whose the pending events are, without decrypting them (PostgreSQL's pass before taking the conversations' locks).
PENDING_KEY_COLUMNS = (InboundQueue.id, InboundQueue.channel, InboundQueue.channel_user_id)


def _conversation_key(row: PendingEvent) -> int:
    return zlib.crc32(f"{row.channel}:{row.channel_user_id}".encode()) & 0x7FFFFFFF


class InboundProcessor:
    # Events stepped in one transaction, when that many are waiting. A transaction costs about 5 ms of fixed work
    # (a dozen statements) besides about 1 ms per event. On PostgreSQL nothing waits for it: in bench/webhooks.py
    # 40 carried more than 20. On SQLite webhooks wait while it writes (its reading and stepping take no lock,
    # see Database.read_then_write): 20 kept acknowledgement p99 at 46-68 ms, 40 let it reach 115 ms now and then.
    SQLITE_TRANSACTION_SIZE = 20
    POSTGRES_TRANSACTION_SIZE = 40

    def __init__(self, db: Database, service: ConversationService, channels: dict[str, Channel], outbox: Outbox,
                 clock: Clock, batch_size: int = 200, transaction_size: int | None = None) -> None:
        self.db = db
        self.service = service
        self.channels = channels
        self.outbox = outbox
        self.clock = clock
        self.batch_size = batch_size
        if transaction_size is None:
            transaction_size = self.POSTGRES_TRANSACTION_SIZE if db.is_postgres else self.SQLITE_TRANSACTION_SIZE
        self.transaction_size = transaction_size
        self.locks = DispatchLocks(db, namespace=CONVERSATION_LOCKS, file_name="steps",
                                   who="process is stepping webhook events")

    async def run_once(self) -> int:
        if not self.db.is_postgres and not self.locks.may_dispatch():
            return 0  # SQLite: one stepping process at a time, or two could take one worker's events out of order
        if not self.db.is_postgres:  # one process, in arrival order
            rows = await asyncio.to_thread(self._pending)
            return await self._step_rows(rows) if rows else 0
        # Several processors may run (one per `mirai dispatch`): each takes a lock per conversation before
        # stepping it, then reads the events (not only whose they are) again, so one worker's events are never
        # stepped out of order.
        waiting = await asyncio.to_thread(self._pending, PENDING_KEY_COLUMNS)
        if not waiting:
            return 0
        mine = await asyncio.to_thread(self.locks.try_lock, sorted({_conversation_key(r) for r in waiting}))
        if not mine:
            return 0
        try:
            held = set(mine)
            rows = [r for r in await asyncio.to_thread(self._pending) if _conversation_key(r) in held]
            return await self._step_rows(rows)
        finally:
            await asyncio.to_thread(self.locks.unlock, mine)

    async def _step_rows(self, rows: list[PendingEvent]) -> int:
        work: list[tuple[PendingEvent, Turn | None]] = []
        for row in rows:
            event = InboundEvent.model_validate(row.event["event"]) if row.event.get("event") else None
            if event is not None and event.kind is InboundKind.FOLLOW and not event.language_hint:
                lookup = getattr(self.channels.get(row.channel), "user_language", None)
                if lookup is not None:
                    event = event.model_copy(update={"language_hint": await lookup(row.channel_user_id)})
            work.append((row, Turn(row.channel, row.channel_user_id, event, row.provider_event_id, row.reply_token,
                                   row.reply_token_expires_at) if event is not None else None))
        for start in range(0, len(work), self.transaction_size):
            await asyncio.to_thread(self._process_batch, work[start:start + self.transaction_size])
        return len(rows)

    def _pending(self, columns: tuple[Any, ...] = PENDING_COLUMNS) -> list[PendingEvent]:
        with self.db.reading() as s:
            return list(s.execute(select(*columns).where(InboundQueue.status == "pending")
                                  .order_by(InboundQueue.id).limit(self.batch_size)).all())  # type: ignore[arg-type]

    def _process_batch(self, batch: list[tuple[PendingEvent, Turn | None]]) -> None:
        """A few events in one transaction (one commit, a few queries for all of them); if any of them fails,
        the batch is rolled back and its events are stepped one by one, so that only the bad one is set aside.
        The NLU reads their texts first, outside the transaction (see ConversationService.read_ahead)."""
        turns = self.service.read_ahead([turn for _, turn in batch])
        batch = [(row, turn) for (row, _), turn in zip(batch, turns)]
        if len(batch) > 1:
            try:
                try:
                    # SQLite: read and step without the write lock, take it only to write (webhooks wait
                    # for it, see Database.read_then_write); the conversation states' versions are checked then.
                    if not self.db.is_postgres:
                        self.service.create_new_workers([turn for _, turn in batch])
                    with self.db.read_then_write() as (s, write_now):
                        self._step(s, batch, write_now)
                except WroteBeforeWriting:  # a sheet started, a counsellor's case touched: again, under the lock
                    with self.db.session() as s:
                        self._step(s, batch)
                return
            except Exception:  # noqa: BLE001 (retried one by one below, where the failure is recorded)
                log.warning("a batch of %d events failed; stepping them one by one", len(batch), exc_info=True)
        for item in batch:
            self._process(*item)

    def _process(self, row: PendingEvent, turn: Turn | None) -> None:
        now = self.clock()
        try:
            with self.db.session() as s:
                self._step(s, [(row, turn)])
        except StaleState:  # the worker's state changed while this was stepped: it stays pending, stepped again
            log.info("conversation state of inbound event %s changed meanwhile; it will be stepped again", row.id)
        except Exception as exc:  # noqa: BLE001 (one bad event must not block everyone behind it)
            log.exception("could not process inbound event %s", row.id)
            with self.db.session() as s:
                s.execute(update(InboundQueue).where(InboundQueue.id == row.id).values(
                    status="failed", error=type(exc).__name__, processed_at=now))

    def _step(self, s: Session, batch: list[tuple[PendingEvent, Turn | None]],
              write_now: Callable[[], None] | None = None) -> None:
        """``write_now``: called before the first write (Database.read_then_write), if the caller asks."""
        now = self.clock()
        ids = [row.id for row, _ in batch]
        claim = select(InboundQueue.id).where(InboundQueue.id.in_(ids), InboundQueue.status == "pending")  # type: ignore[union-attr]
        if self.db.engine.dialect.name == "postgresql":
            claim = claim.with_for_update(skip_locked=True)  # another processor has them: leave them to it
        pending = set(s.exec(claim).all())
        batch = [(row, turn) for row, turn in batch if row.id in pending]
        if not batch:
            return
        turns: list[Turn] = []
        for row, turn in batch:  # in arrival order: local calls (a ticked box) between the steps around them
            if row.event.get("local_calls"):
                if write_now is not None:
                    write_now()
                if turns:
                    self.service.handle_many(s, turns)
                    turns = []
                worker = ConversationRepository(s).worker_for_update(row.channel, row.channel_user_id, "en", now)
                self.outbox.enqueue_calls(s, worker, row.event["local_calls"], now)
            if turn is not None:
                turns.append(turn)
        if turns:
            self.service.handle_many(s, turns, write_now)
        if write_now is not None:
            write_now()
        queue = InboundQueue.__table__  # type: ignore[attr-defined]
        s.execute(update(queue).where(queue.c.id.in_([row.id for row, _ in batch])).values(status="done",
                                                                                          processed_at=now))


class Pipeline:
    """Runs the inbound processor and the outbox dispatcher in a background thread with its own event loop."""

    def __init__(self, processor: InboundProcessor, dispatcher: Dispatcher) -> None:
        self.processor = processor
        self.dispatcher = dispatcher
        self.wakeup = Wakeup()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self.wakeup.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="mirai-pipeline", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wakeup.set()
        if self._thread:
            self._thread.join(timeout)

    async def _run(self) -> None:
        inbound = asyncio.create_task(self._loop(self.processor.run_once))
        outbound = asyncio.create_task(self._loop(self.dispatcher.run_once))
        await asyncio.gather(inbound, outbound)
        await self.dispatcher.close()
        self.processor.locks.close()

    async def _loop(self, work) -> None:  # type: ignore[no-untyped-def]
        while not self._stop.is_set():
            try:
                done = await work()
            except Exception:  # noqa: BLE001 (keep serving; the error is logged and retried)
                log.exception("background step failed")
                done = 0
            if done:
                self.wakeup.set()  # stepping made outbox rows: let the dispatcher look at once
                await asyncio.sleep(0)
            else:
                await self.wakeup.wait(0.05)
