"""From stored webhook events to sent replies, in the background: the webhook only verifies, stores and
answers; this loop steps each stored event in arrival order (one at a time, so one worker's messages never
overtake each other) and the dispatcher sends the outbox."""
from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.channels.base import Channel, ParsedEvent
from bot.messages import InboundEvent, InboundKind
from bot.outbox import Clock, Dispatcher, Outbox, Wakeup
from bot.service import ConversationService
from bot.store.db import Database
from bot.store.models import InboundQueue
from bot.store.repository import ConversationRepository

log = logging.getLogger("mirai.pipeline")


class InboundStore:
    """The webhook side: store verified events, dropping the ones already seen."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def store(self, channel: str, events: list[ParsedEvent], now: datetime) -> int:
        if not events:
            return 0
        ids = [e.provider_event_id for e in events]
        with self.db.session() as s:
            seen = set(s.exec(select(InboundQueue.provider_event_id).where(
                InboundQueue.channel == channel, InboundQueue.provider_event_id.in_(ids))).all())  # type: ignore[attr-defined]
            fresh = []
            for e in events:
                if e.provider_event_id in seen:
                    continue
                seen.add(e.provider_event_id)
                fresh.append(InboundQueue(
                    channel=channel, channel_user_id=e.user_id, provider_event_id=e.provider_event_id,
                    event={"event": e.event.model_dump(mode="json") if e.event else None,
                           "local_calls": e.local_calls},
                    reply_token=e.reply_token, reply_token_expires_at=e.reply_token_expires_at, received_at=now))
            try:
                with s.begin_nested():
                    s.add_all(fresh)
            except IntegrityError:  # a redelivery raced us: store one by one, skipping duplicates
                stored = 0
                for row in fresh:
                    try:
                        with s.begin_nested():
                            s.add(InboundQueue(**row.model_dump(exclude={"id"})))
                        stored += 1
                    except IntegrityError:
                        pass
                return stored
        return len(fresh)


class InboundProcessor:
    def __init__(self, db: Database, service: ConversationService, channels: dict[str, Channel], outbox: Outbox,
                 clock: Clock, batch_size: int = 200) -> None:
        self.db = db
        self.service = service
        self.channels = channels
        self.outbox = outbox
        self.clock = clock
        self.batch_size = batch_size

    async def run_once(self) -> int:
        rows = await asyncio.to_thread(self._pending)
        for row in rows:
            event = InboundEvent.model_validate(row.event["event"]) if row.event.get("event") else None
            if event is not None and event.kind is InboundKind.FOLLOW and not event.language_hint:
                lookup = getattr(self.channels.get(row.channel), "user_language", None)
                if lookup is not None:
                    event = event.model_copy(update={"language_hint": await lookup(row.channel_user_id)})
            await asyncio.to_thread(self._process, row, event)
        return len(rows)

    def _pending(self) -> list[InboundQueue]:
        with self.db.session() as s:
            return list(s.exec(select(InboundQueue).where(InboundQueue.status == "pending")
                               .order_by(InboundQueue.id).limit(self.batch_size)).all())  # type: ignore[arg-type]

    def _process(self, row: InboundQueue, event: InboundEvent | None) -> None:
        now = self.clock()
        try:
            with self.db.session() as s:
                current = s.get(InboundQueue, row.id)
                if current is None or current.status != "pending":
                    return
                if row.event.get("local_calls"):
                    repo = ConversationRepository(s)
                    worker = repo.worker_for_update(row.channel, row.channel_user_id, "en", now)
                    self.outbox.enqueue_calls(s, worker, row.event["local_calls"], now)
                if event is not None:
                    self.service.handle_in(s, row.channel, row.channel_user_id, event, row.provider_event_id,
                                           reply_token=row.reply_token,
                                           reply_token_expires_at=row.reply_token_expires_at)
                current.status, current.processed_at = "done", now
                s.add(current)
        except Exception as exc:  # noqa: BLE001 (one bad event must not block everyone behind it)
            log.exception("could not process inbound event %s", row.id)
            with self.db.session() as s:
                current = s.get(InboundQueue, row.id)
                if current is not None:
                    current.status, current.error, current.processed_at = "failed", type(exc).__name__, now
                    s.add(current)


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
