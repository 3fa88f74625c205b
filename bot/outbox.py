"""The durable outbox: provider calls are rows written with the step that produced them, and a dispatcher
sends them in order per worker, retrying with backoff and honouring rate limits, until each is sent once.

Exactly once: a row is marked sent only after the provider accepted it. If the process dies in between, the
row is sent again with the same idempotency key, which LINE answers with 409 "already accepted".
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, insert, update
from sqlmodel import Session, select

from bot.channels.base import Channel, SendContext, SendOutcome, SendResult
from bot.broadcast import BroadcastSender
from bot.messages import Outbound
from bot.sendrules import UNSOLICITED, QuietHours, retry_delay
from bot.settings import Settings
from bot.store.db import Database, as_utc, try_file_lock_beside
from bot.store.models import OutboxMessage, Worker

log = logging.getLogger("mirai.outbox")
Clock = Callable[[], datetime]


# What the dispatcher reads of a due outbox row and of its worker: columns, not ORM objects (building those,
# for every row of every pass, took a fifth of the sender's time).
DUE_COLUMNS = (OutboxMessage.id, OutboxMessage.worker_id, OutboxMessage.channel, OutboxMessage.recipient,
               OutboxMessage.payload, OutboxMessage.source, OutboxMessage.idempotency_key, OutboxMessage.reply_token,
               OutboxMessage.reply_token_expires_at, OutboxMessage.attempts, OutboxMessage.next_attempt_at,
               Worker.reachable.label("worker_reachable"), Worker.opted_out.label("worker_opted_out"),  # type: ignore[attr-defined]
               Worker.last_inbound_at.label("worker_last_inbound_at"))  # type: ignore[union-attr]
DueSend = Row[Any]
# Enough to tell which workers have a message due (PostgreSQL's pass before taking the workers' locks).
DUE_KEY_COLUMNS = (OutboxMessage.id, OutboxMessage.worker_id, OutboxMessage.next_attempt_at)


class Outbox:
    """Turns messages for a worker into outbox rows for the worker's channel (none for embedded channels)."""

    def __init__(self, channels: dict[str, Channel]) -> None:
        self.channels = channels

    def handles(self, channel: str) -> bool:
        return channel in self.channels

    def enqueue(self, session: Session, worker: Worker, outbound: list[Outbound], now: datetime, *,
                reply_token: str | None = None, reply_token_expires_at: datetime | None = None,
                source: str = "bot", into: list[dict[str, Any]] | None = None) -> int:
        channel = self.channels.get(worker.channel)
        if channel is None or not outbound:
            return 0
        return self.enqueue_calls(session, worker, channel.render(outbound), now, source=source, into=into,
                                  reply_token=reply_token, reply_token_expires_at=reply_token_expires_at)

    def enqueue_calls(self, session: Session, worker: Worker, calls: list[dict[str, Any]], now: datetime, *,
                      source: str = "channel", reply_token: str | None = None,
                      reply_token_expires_at: datetime | None = None,
                      into: list[dict[str, Any]] | None = None) -> int:
        """Outbox rows for these provider calls, in order; inserted now, or added to ``into`` for the caller
        to insert with others (a batch of turns writes all its rows at once)."""
        rows = [dict(worker_id=worker.id, channel=worker.channel, recipient=worker.channel_user_id, payload=call,
                     source=source, idempotency_key=str(uuid.uuid4()), status="pending", attempts=0,
                     next_attempt_at=now, created_at=now, last_error=None, sent_at=None,
                     # Only the first call may use the reply token: LINE accepts a token once.
                     reply_token=reply_token if i == 0 else None,
                     reply_token_expires_at=reply_token_expires_at if i == 0 else None)
                for i, call in enumerate(calls)]
        if into is not None:
            into.extend(rows)
        elif rows:
            session.execute(insert(OutboxMessage.__table__), rows)  # type: ignore[arg-type]
        return len(rows)


class DispatchLocks:
    """Which dispatcher may send to which worker right now, so that any number of dispatcher processes share
    the work without sending a message twice or out of order.

    PostgreSQL: a session advisory lock per worker, on a connection of this dispatcher's own; the server drops
    them the moment the process dies. SQLite: one dispatcher at a time, by an exclusive lock on a file beside
    the database, which the operating system releases when the process dies."""

    NAMESPACE = 7_301  # the first key of our advisory locks, so they never meet another application's

    def __init__(self, db: Database, namespace: int | None = None, file_name: str = "dispatch",
                 who: str = "dispatcher is sending") -> None:
        self.db = db
        self.namespace = namespace if namespace is not None else self.NAMESPACE
        self.file_name, self.who = file_name, who
        self._guard = threading.Lock()
        self._connection: Any = None
        self._file: Any = None
        self._told_waiting = False

    def may_dispatch(self) -> bool:
        if self.db.is_postgres:
            return True
        if self._file is not None:
            return True
        handle = try_file_lock_beside(self.db.url, self.file_name)
        if handle is None:
            if not self._told_waiting:
                log.warning("another %s for this SQLite database; this one waits", self.who)
                self._told_waiting = True
            return False
        self._file = handle
        return True

    def try_lock(self, worker_ids: list[int]) -> list[int]:
        if not self.db.is_postgres or not worker_ids:
            return worker_ids
        with self._guard:
            conn = self._conn()
            rows = conn.exec_driver_sql(
                "SELECT w FROM unnest(%(ids)s::int[]) AS w WHERE pg_try_advisory_lock(%(ns)s, w)",
                {"ids": worker_ids, "ns": self.namespace}).all()
            conn.commit()
            return [int(r[0]) for r in rows]

    def unlock(self, worker_ids: list[int]) -> None:
        if not self.db.is_postgres or not worker_ids:
            return
        with self._guard:
            conn = self._conn()
            conn.exec_driver_sql("SELECT pg_advisory_unlock(%(ns)s, w) FROM unnest(%(ids)s::int[]) AS w",
                                 {"ids": worker_ids, "ns": self.namespace}).all()
            conn.commit()

    def _conn(self) -> Any:
        if self._connection is None:
            self._connection = self.db.engine.connect()
        return self._connection

    def close(self) -> None:
        with self._guard:
            if self._connection is not None:
                self._connection.close()  # the server releases every lock it held
                self._connection = None
            if self._file is not None:
                if self._file is not True:
                    self._file.close()
                self._file = None


class Dispatcher:
    def __init__(self, db: Database, channels: dict[str, Channel], settings: Settings, clock: Clock,
                 concurrency: int = 64, batch_size: int = 500, record_every: int = 32) -> None:
        self.db = db
        self.locks = DispatchLocks(db)
        self.channels = channels
        self.settings = settings
        self.clock = clock
        self.batch_size = batch_size
        self.record_every = record_every
        self._outcomes: list[tuple[int, int, str, SendResult]] = []
        self._limit = asyncio.Semaphore(concurrency)
        self.quiet = QuietHours.parse(settings.quiet_hours, settings.timezone)
        self.broadcast = BroadcastSender(db, channels, settings, clock, self.locks, concurrency=concurrency)
        self._broadcasting = False
        self._next_broadcast_look = 0.0

    async def run_once(self) -> int:
        """Sends what is due now, conversations first and then campaigns; returns how many rows got an
        outcome."""
        if not await asyncio.to_thread(self.locks.may_dispatch):
            return 0
        sent = await self._conversations_once()
        # Campaigns are looked for at most twice a second while none is going out: the conversations' loop
        # turns hundreds of times a second under load, and each look costs queries.
        moment = time.monotonic()
        if self._broadcasting or moment >= self._next_broadcast_look:
            done = await self.broadcast.run_once()
            self._broadcasting = done > 0
            self._next_broadcast_look = moment + 0.5
            sent += done
        return sent

    async def _conversations_once(self) -> int:
        if self.db.is_postgres:
            # Which workers have something due, without the payloads: the rows themselves are read under the
            # locks, since another dispatcher may have just sent some of them.
            due = await asyncio.to_thread(self._due_rows, None, DUE_KEY_COLUMNS)
            mine = await asyncio.to_thread(self.locks.try_lock, list(due))
            heads = await asyncio.to_thread(self._due_rows, set(mine)) if mine else {}
        else:  # one dispatcher at a time (DispatchLocks.may_dispatch)
            heads = await asyncio.to_thread(self._due_rows)
            mine = list(heads)
        if not heads:
            if mine:
                await asyncio.to_thread(self.locks.unlock, mine)
            return 0
        try:
            counts = await asyncio.gather(*(self._send_chain(rows) for rows in heads.values()))
            await self._flush_outcomes()  # before the locks go: the next holder must see these as sent
        finally:
            await asyncio.to_thread(self.locks.unlock, mine)
        return sum(counts)

    async def run_until_empty(self, timeout: float = 60.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if await self.run_once() == 0 and not await asyncio.to_thread(self.pending_count):
                return
            await asyncio.sleep(0.01)

    def pending_count(self) -> int:
        """Rows still to send; in quiet hours the nudges and campaigns that wait for the morning do not count
        (`mirai dispatch --until-empty` at night exits instead of waiting for 08:00)."""
        query = select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status.in_(("pending", "sending")))  # type: ignore[attr-defined]
        if self.quiet.is_quiet(self.clock()):
            query = query.where(OutboxMessage.source.not_in(UNSOLICITED))  # type: ignore[attr-defined]
        with self.db.reading() as s:
            return s.exec(query).one()

    def _due_rows(self, only: set[int] | None = None,
                  columns: tuple[Any, ...] = DUE_COLUMNS) -> dict[int, list[DueSend]]:
        """Pending rows grouped by worker, in order; a worker whose first row is not due yet waits whole, so
        that its messages never overtake each other."""
        now = self.clock()
        with self.db.reading() as s:
            query = (select(*columns).join(Worker, Worker.id == OutboxMessage.worker_id)  # type: ignore[arg-type]
                     .where(OutboxMessage.status == "pending",
                            OutboxMessage.campaign_id.is_(None)))  # type: ignore[union-attr]
            if only is not None:
                query = query.where(OutboxMessage.worker_id.in_(only))  # type: ignore[attr-defined]
            rows = s.execute(query.order_by(OutboxMessage.id).limit(self.batch_size)).all()
        chains: dict[int, list[DueSend]] = {}
        blocked: set[int] = set()
        for row in rows:
            if row.worker_id in blocked:
                continue
            if as_utc(row.next_attempt_at) > now and row.worker_id not in chains:
                blocked.add(row.worker_id)
                continue
            chains.setdefault(row.worker_id, []).append(row)
        return chains

    async def _send_chain(self, rows: list[DueSend]) -> int:
        done = 0
        for row in rows:
            result = await self._send_one(row)
            self._outcomes.append((row.id, row.worker_id, row.source, result))
            if len(self._outcomes) >= self.record_every:
                await self._flush_outcomes()
            done += 1
            if result.outcome in (SendOutcome.RETRY, SendOutcome.UNREACHABLE, SendOutcome.DEFERRED):
                break  # the rest of this worker's messages wait behind this one
        return done

    async def _flush_outcomes(self) -> None:
        """Outcomes are written a few at a time, in one transaction: a crash before the write means those
        rows are sent again, which retry keys make harmless where the provider has them (LINE pushes)."""
        if self._outcomes:
            outcomes, self._outcomes = self._outcomes, []
            await asyncio.to_thread(self._record_many, outcomes)

    async def _send_one(self, row: DueSend) -> SendResult:
        channel = self.channels.get(row.channel)
        if channel is None or not channel.enabled():
            return SendResult(SendOutcome.RETRY, f"channel {row.channel} is not configured")
        # An erased worker is unreachable, but their last words (the confirmation) still go out.
        if not row.worker_reachable and row.source not in ("channel", "erasure"):
            return SendResult(SendOutcome.SKIPPED, "the worker blocked the bot or left")
        now = self.clock()
        if row.source in UNSOLICITED:
            if row.worker_opted_out:
                return SendResult(SendOutcome.SKIPPED, "opted out")
            if self.quiet.is_quiet(now):
                wait = (self.quiet.next_allowed(now) - now).total_seconds()
                return SendResult(SendOutcome.DEFERRED, "quiet hours", wait)
        await channel.rate_limits().acquire(chat=row.recipient)
        ctx = SendContext(recipient=row.recipient, idempotency_key=row.idempotency_key, reply_token=row.reply_token,
                          reply_token_valid=bool(row.reply_token_expires_at and
                                                 as_utc(row.reply_token_expires_at) > now),
                          attempts=row.attempts, source=row.source,
                          last_inbound_at=as_utc(row.worker_last_inbound_at) if row.worker_last_inbound_at else None,
                          now=now)
        async with self._limit:
            try:
                return await channel.send(row.payload, ctx)
            except Exception as exc:  # noqa: BLE001 (a bug in one adapter must not stop all sending)
                log.exception("send failed in channel %s", row.channel)
                return SendResult(SendOutcome.RETRY, f"internal error: {type(exc).__name__}")

    def _record_many(self, outcomes: list[tuple[int, int, str, SendResult]]) -> None:
        now = self.clock()
        # The common case, a conversation's message accepted, is one UPDATE for all of them: loading each row
        # (and decrypting its payload) again only to change its status cost as much as sending it.
        plain_sent: list[int] = []
        others: list[tuple[int, int, SendResult]] = []
        for row_id, worker_id, source, result in outcomes:
            if result.outcome is SendOutcome.SENT and source != "erasure":
                plain_sent.append(row_id)
            else:
                others.append((row_id, worker_id, result))
        with self.db.session() as s:
            if plain_sent:
                table = OutboxMessage.__table__  # type: ignore[attr-defined]
                s.execute(update(table).where(table.c.id.in_(plain_sent), table.c.status == "pending")
                          .values(status="sent", sent_at=now, last_error=None, attempts=table.c.attempts + 1))
            if not others:
                return
            rows = {r.id: r for r in s.exec(select(OutboxMessage).where(
                OutboxMessage.id.in_([row_id for row_id, _, _ in others])))}  # type: ignore[union-attr]
            for row_id, worker_id, result in others:
                row = rows.get(row_id)
                if row is None or row.status != "pending":
                    continue
                self._apply_outcome(s, row, worker_id, result, now)

    def _apply_outcome(self, s: Session, row: OutboxMessage, worker_id: int, result: SendResult,
                       now: datetime) -> None:
        if result.outcome is SendOutcome.DEFERRED:
            row.next_attempt_at = now + timedelta(seconds=result.retry_after or 0)
            row.last_error = result.reason
            s.add(row)
            return
        row.attempts += 1
        if result.outcome is SendOutcome.SENT:
            row.status, row.sent_at, row.last_error = "sent", now, None
        elif result.outcome is SendOutcome.RETRY and row.attempts < self.settings.outbox_max_attempts:
            log.info("send of outbox row %s will be retried: %s", row.id, result.reason)
            row.next_attempt_at = now + timedelta(seconds=self._delay(row.attempts, result.retry_after))
            row.last_error = result.reason
        elif result.outcome is SendOutcome.SKIPPED:
            row.status, row.last_error = "skipped", result.reason
        else:
            row.status, row.last_error = "failed", result.reason or "gave up"
            if result.outcome is SendOutcome.UNREACHABLE:
                worker = s.get(Worker, worker_id)
                if worker is not None:
                    worker.reachable = False
                    s.add(worker)
        if row.source == "erasure" and row.status != "pending":
            from bot.privacy import scrub_erasure_row

            scrub_erasure_row(row)  # delivered (or given up): the recipient and the text go too
        s.add(row)

    def _delay(self, attempts: int, retry_after: float | None) -> float:
        return retry_delay(attempts, retry_after, self.settings.outbox_retry_base_seconds,
                           self.settings.outbox_retry_max_seconds)

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
        self.broadcast.close()
        self.locks.close()



class Wakeup:
    """Lets the web thread tell the background loop that new work is stored."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        await asyncio.to_thread(self._event.wait, timeout)
        self._event.clear()
