"""Campaign sends: many outbox rows with the same text, sent apart from the conversations so that a worker's
reply never waits behind a national broadcast.

No copy twice, none lost, whatever moment the process dies at:
- LINE rows go in multicast batches fixed when the campaign was enqueued (same batch key, same content, up
  to 500 people). The batch's retry key is derived from its key, so sending it again after a crash is answered
  409 "already accepted" and is recorded as sent.
- Providers without retry keys (Telegram, Messenger) get each row claimed as ``sending`` before the call. A
  row found ``sending`` with nobody holding it was in flight when a dispatcher died: whether it arrived is
  unknown, so it is not sent again but counted as failed with that reason (a second copy is the worse harm).
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, select, update

from bot.channels.base import Channel, SendContext, SendOutcome, SendResult
from bot.sendrules import QuietHours, retry_delay
from bot.settings import Settings
from bot.store.db import Database, as_utc
from bot.store.models import Campaign, OutboxMessage, Worker

log = logging.getLogger("mirai.broadcast")
Clock = Callable[[], datetime]
BATCH_LOCKS = 7_304  # advisory lock namespace of multicast batches (PostgreSQL)
RETRY_KEY_NAMESPACE = uuid.UUID("1b2f5c8e-7d35-4e0a-9a51-6f1c3c2a9b10")
IN_FLIGHT_UNKNOWN = "outcome unknown: the dispatcher stopped while sending (not sent again)"

outbox = OutboxMessage.__table__
workers = Worker.__table__


@dataclass
class BroadcastRow:
    id: int
    worker_id: int
    campaign_id: int
    channel: str
    recipient: str
    payload: dict[str, Any]
    batch_key: str | None
    idempotency_key: str
    attempts: int
    opted_out: bool
    reachable: bool
    last_inbound_at: datetime | None


def retry_key_for(batch_key: str) -> str:
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, batch_key))


class BroadcastSender:
    """One pass sends what is due, multicast batches first, then single sends, within a time budget."""

    def __init__(self, db: Database, channels: dict[str, Channel], settings: Settings, clock: Clock,
                 worker_locks: Any, concurrency: int = 64, chunk: int = 5000) -> None:
        from bot.outbox import DispatchLocks

        self.db = db
        self.channels = channels
        self.settings = settings
        self.clock = clock
        self.worker_locks = worker_locks  # the conversation dispatcher's per-worker locks: one sender per worker
        self.batch_locks = DispatchLocks(db, namespace=BATCH_LOCKS)
        self.quiet = QuietHours.parse(settings.quiet_hours, settings.timezone)
        self.concurrency = concurrency
        self.chunk = chunk
        self._in_flight: set[int] = set()
        self._next_recovery = 0.0

    async def run_once(self, budget_seconds: float = 2.0) -> int:
        now = self.clock()
        if self.quiet.is_quiet(now):
            return 0  # the rows stay pending: quiet hours delay, never drop
        if time.monotonic() >= self._next_recovery:  # orphans appear only when a dispatcher dies: look now and then
            await asyncio.to_thread(self._recover_in_flight)
            self._next_recovery = time.monotonic() + 30
        rows = await asyncio.to_thread(self._due, now)
        if not rows:
            return 0
        deadline = time.monotonic() + budget_seconds
        done = await asyncio.to_thread(self._skip_unwritable, rows, now)
        live = [r for r in rows if r.id not in done]
        batches: dict[str, list[BroadcastRow]] = {}
        singles: list[BroadcastRow] = []
        for row in live:
            channel = self.channels[row.channel]
            if channel.max_multicast and row.batch_key:
                batches.setdefault(row.batch_key, []).append(row)
            else:
                singles.append(row)
        count = len(done)
        if batches:
            count += await self._send_batches(batches)
        for start in range(0, len(singles), self.concurrency):
            if time.monotonic() > deadline:
                break  # the conversations' dispatcher gets its turn; the rest waits for the next pass
            count += await self._send_singles(singles[start:start + self.concurrency])
        await asyncio.to_thread(self._finish_campaigns, {r.campaign_id for r in rows})
        return count

    # ----- reading -------------------------------------------------------------------------------------
    def _due(self, now: datetime) -> list[BroadcastRow]:
        """Due rows in id order; a multicast batch is always read whole, so that its retry key never covers
        a different set of people than the first time it was sent."""
        columns = (outbox.c.id, outbox.c.worker_id, outbox.c.campaign_id, outbox.c.channel, outbox.c.recipient,
                   outbox.c.batch_key, outbox.c.idempotency_key, outbox.c.attempts,
                   workers.c.opted_out, workers.c.reachable, workers.c.last_inbound_at)
        base = (select(*columns).join(workers, workers.c.id == outbox.c.worker_id)
                .where(outbox.c.status == "pending", outbox.c.campaign_id.is_not(None)))
        with self.db.session() as s:
            found = s.execute(base.where(outbox.c.next_attempt_at <= now).order_by(outbox.c.id)
                              .limit(self.chunk)).all()
            keys = {r.batch_key for r in found if r.batch_key}
            rows = {r.id: r for r in found}
            if keys:
                for r in s.execute(base.where(outbox.c.batch_key.in_(keys))).all():
                    rows[r.id] = r
            # Payloads are encrypted at rest: a batch's rows all carry the same one, so only its first is read.
            heads: dict[str, int] = {}
            for r in rows.values():
                if r.batch_key and (r.batch_key not in heads or r.id < heads[r.batch_key]):
                    heads[r.batch_key] = r.id
            wanted = sorted({*heads.values(), *(r.id for r in rows.values() if not r.batch_key)})
            payloads: dict[int, dict[str, Any]] = {}
            for start in range(0, len(wanted), 1000):
                payloads.update((row_id, payload) for row_id, payload in s.execute(
                    select(outbox.c.id, outbox.c.payload).where(outbox.c.id.in_(wanted[start:start + 1000]))))
        return [BroadcastRow(id=r.id, worker_id=r.worker_id, campaign_id=r.campaign_id, channel=r.channel,
                             recipient=r.recipient,
                             payload=payloads[heads[r.batch_key] if r.batch_key else r.id],
                             batch_key=r.batch_key, idempotency_key=r.idempotency_key, attempts=r.attempts,
                             opted_out=r.opted_out, reachable=r.reachable,
                             last_inbound_at=as_utc(r.last_inbound_at) if r.last_inbound_at else None)
                for r in sorted(rows.values(), key=lambda r: r.id)]

    def _skip_unwritable(self, rows: list[BroadcastRow], now: datetime) -> set[int]:
        """Rows for people we must not write to any more, marked skipped with the reason (counted)."""
        reasons: dict[str, list[int]] = {}
        for row in rows:
            channel = self.channels.get(row.channel)
            reason = None
            if row.opted_out:
                reason = "opted out"
            elif not row.reachable:
                reason = "the worker blocked the bot or left"
            elif channel is None or not channel.enabled():
                reason = f"channel {row.channel} is not configured"
            else:
                reason = channel.may_write_first(row.last_inbound_at, now)
            if reason:
                reasons.setdefault(reason, []).append(row.id)
        if reasons:
            with self.db.session() as s:
                for reason, ids in reasons.items():
                    s.execute(update(outbox).where(outbox.c.id.in_(ids), outbox.c.status == "pending")
                              .values(status="skipped", last_error=reason))
                s.commit()
        return {i for ids in reasons.values() for i in ids}

    # ----- multicast -----------------------------------------------------------------------------------
    async def _send_batches(self, batches: dict[str, list[BroadcastRow]]) -> int:
        keys = list(batches)
        lock_ids = {_lock_id(k): k for k in keys}
        mine = await asyncio.to_thread(self.batch_locks.try_lock, list(lock_ids))
        try:
            if self.db.is_postgres and mine:  # another dispatcher may have just sent some: read again
                fresh = await asyncio.to_thread(self._pending_ids, [lock_ids[i] for i in mine])
                batches = {lock_ids[i]: [r for r in batches[lock_ids[i]] if r.id in fresh] for i in mine}
            else:
                batches = {lock_ids[i]: batches[lock_ids[i]] for i in mine}
            limit = asyncio.Semaphore(16)
            unrecorded: list[tuple[list[BroadcastRow], SendResult]] = []
            recording = asyncio.Lock()
            last_record = time.monotonic()

            async def record() -> None:
                # Outcomes are written every few batches (or half second), so that progress moves while a big
                # campaign goes out; the locks are held until every outcome is written.
                nonlocal last_record
                async with recording:
                    done, unrecorded[:] = list(unrecorded), []
                    last_record = time.monotonic()
                    if done:
                        await asyncio.to_thread(self._record, done)

            async def send(key: str, rows: list[BroadcastRow]) -> int:
                async with limit:
                    channel = self.channels[rows[0].channel]
                    recipients = list(dict.fromkeys(r.recipient for r in rows))
                    result = await channel.send_multicast(rows[0].payload, recipients, retry_key_for(key))
                unrecorded.append((rows, result))
                if len(unrecorded) >= 8 or time.monotonic() - last_record > 0.5:
                    await record()
                return len(rows)

            counts = await asyncio.gather(*(send(k, rows) for k, rows in batches.items() if rows))
            await record()
        finally:
            await asyncio.to_thread(self.batch_locks.unlock, mine)
        return sum(counts)

    def _pending_ids(self, keys: list[str]) -> set[int]:
        with self.db.session() as s:
            return set(s.execute(select(outbox.c.id).where(outbox.c.batch_key.in_(keys),
                                                           outbox.c.status == "pending")).scalars())

    # ----- one at a time -------------------------------------------------------------------------------
    async def _send_singles(self, rows: list[BroadcastRow]) -> int:
        mine = set(await asyncio.to_thread(self.worker_locks.try_lock, sorted({r.worker_id for r in rows})))
        try:
            claimed = await asyncio.to_thread(self._claim, [r for r in rows if r.worker_id in mine])
            rows = [r for r in rows if r.id in claimed]
            self._in_flight.update(claimed)
            results = await asyncio.gather(*(self._send_single(r) for r in rows))
            await asyncio.to_thread(self._record, [([r], result) for r, result in zip(rows, results, strict=True)],
                                    "sending")
            self._in_flight.difference_update(claimed)
        finally:
            await asyncio.to_thread(self.worker_locks.unlock, sorted(mine))
        return len(rows)

    def _claim(self, rows: list[BroadcastRow]) -> set[int]:
        if not rows:
            return set()
        with self.db.session() as s:
            claimed = set(s.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows]),
                                                         outbox.c.status == "pending")
                                    .values(status="sending").returning(outbox.c.id)).scalars())
            s.commit()
        return claimed

    async def _send_single(self, row: BroadcastRow) -> SendResult:
        channel = self.channels[row.channel]
        await channel.rate_limits().acquire(chat=row.recipient)
        now = self.clock()
        ctx = SendContext(recipient=row.recipient, idempotency_key=row.idempotency_key, reply_token=None,
                          reply_token_valid=False, attempts=row.attempts, source="campaign",
                          last_inbound_at=row.last_inbound_at, now=now)
        try:
            return await channel.send(row.payload, ctx)
        except Exception as exc:  # noqa: BLE001 (one adapter's bug must not stop the campaign)
            log.exception("campaign send failed in channel %s", row.channel)
            return SendResult(SendOutcome.RETRY, f"internal error: {type(exc).__name__}")

    def _recover_in_flight(self) -> None:
        """Rows left ``sending`` by a dispatcher that died: failed with the reason, never sent twice."""
        with self.db.session() as s:
            stuck = s.execute(select(outbox.c.id, outbox.c.worker_id).where(
                outbox.c.status == "sending", outbox.c.campaign_id.is_not(None))).all()
            stuck = [r for r in stuck if r.id not in self._in_flight]
            if not stuck:
                return
            worker_ids = sorted({r.worker_id for r in stuck})
            free = set(self.worker_locks.try_lock(worker_ids))  # held by nobody alive
            try:
                ids = [r.id for r in stuck if r.worker_id in free]
                if ids:
                    s.execute(update(outbox).where(outbox.c.id.in_(ids), outbox.c.status == "sending")
                              .values(status="failed", last_error=IN_FLIGHT_UNKNOWN))
                    s.commit()
                    log.warning("%d campaign messages were in flight when a dispatcher stopped; "
                                "counted as failed, not sent again", len(ids))
            finally:
                self.worker_locks.unlock(sorted(free))

    # ----- outcomes ------------------------------------------------------------------------------------
    def _record(self, outcomes: list[tuple[list[BroadcastRow], SendResult]], from_status: str = "pending") -> None:
        now = self.clock()
        by_update: dict[tuple[Any, ...], list[int]] = {}
        for rows, result in outcomes:
            attempts = max(r.attempts for r in rows) + 1
            if result.outcome is SendOutcome.SENT:
                key: tuple[Any, ...] = ("sent", None, None)
            elif result.outcome is SendOutcome.SKIPPED:
                key = ("skipped", result.reason, None)
            elif result.outcome in (SendOutcome.RETRY, SendOutcome.DEFERRED) and (
                    attempts < self.settings.outbox_max_attempts or result.outcome is SendOutcome.DEFERRED):
                key = ("pending", result.reason, round(self._delay(attempts, result.retry_after), 3))
            else:
                key = ("failed", result.reason or "gave up", None)
                if result.outcome is SendOutcome.UNREACHABLE:
                    by_update.setdefault(("unreachable", None, None), []).extend(r.worker_id for r in rows)
            by_update.setdefault(key, []).extend(r.id for r in rows)
        with self.db.session() as s:
            for (status, reason, delay), ids in by_update.items():
                if status == "unreachable":
                    s.execute(update(workers).where(workers.c.id.in_(ids)).values(reachable=False))
                    continue
                values: dict[str, Any] = {"status": status, "last_error": reason,
                                          "attempts": outbox.c.attempts + 1}
                if status == "sent":
                    values["sent_at"] = now
                if status == "pending":
                    values["next_attempt_at"] = now + timedelta(seconds=delay or 0)
                s.execute(update(outbox).where(outbox.c.id.in_(ids), outbox.c.status == from_status)
                          .values(**values))
            s.commit()

    def _delay(self, attempts: int, retry_after: float | None) -> float:
        return retry_delay(attempts, retry_after, self.settings.outbox_retry_base_seconds,
                           self.settings.outbox_retry_max_seconds)

    def _finish_campaigns(self, campaign_ids: set[int]) -> None:
        if not campaign_ids:
            return
        campaigns = Campaign.__table__
        open_rows = exists().where(outbox.c.campaign_id == campaigns.c.id,
                                   outbox.c.status.in_(("pending", "sending")))
        with self.db.session() as s:
            s.execute(update(campaigns).where(and_(campaigns.c.id.in_(campaign_ids),
                                                   campaigns.c.status == "sending", ~open_rows))
                      .values(status="done", finished_at=self.clock()))
            s.commit()

    def close(self) -> None:
        self.batch_locks.close()


def _lock_id(batch_key: str) -> int:
    return zlib.crc32(batch_key.encode()) & 0x7FFFFFFF
