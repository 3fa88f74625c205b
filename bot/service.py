"""The conversation service: for each inbound event, load the worker's state, step the engine and save the
new state, the messages and their effects in one transaction, so that nothing is lost or half-written."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from bot.engine import ConversationState, Effect, step
from bot.flowbook import FlowBook, default_flowbook
from bot.messages import InboundEvent, InboundKind, Outbound
from bot.outbox import Outbox
from bot.store.db import Database
from bot.store.models import Worker
from bot.store.repository import ConversationRepository
from nlu.langid import detect_language

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class ConversationService:
    def __init__(self, db: Database, book: FlowBook | None = None, clock: Clock = utcnow,
                 default_language: str = "en", outbox: Outbox | None = None) -> None:
        self.db = db
        self.book = book or default_flowbook()
        self.clock = clock
        self.default_language = default_language
        self.outbox = outbox

    def handle(self, channel: str, channel_user_id: str, event: InboundEvent,
               provider_event_id: str | None = None) -> list[Outbound]:
        """Steps the conversation once. A repeated provider event id is answered with nothing."""
        with self.db.session() as session:
            return self.handle_in(session, channel, channel_user_id, event, provider_event_id)

    def handle_in(self, session: Session, channel: str, channel_user_id: str, event: InboundEvent,
                  provider_event_id: str | None = None, *, reply_token: str | None = None,
                  reply_token_expires_at: datetime | None = None) -> list[Outbound]:
        """The same, inside the caller's transaction (so that the caller's own bookkeeping commits with it).
        For a messaging channel the replies also become outbox rows, in this same transaction."""
        now = self.clock()
        repo = ConversationRepository(session)
        if provider_event_id and repo.already_received(channel, provider_event_id):
            return []
        worker = repo.worker_for_update(channel, channel_user_id, event.language_hint or self.default_language,
                                        now)
        stored = repo.load_state(worker.id)  # type: ignore[arg-type]
        state = (ConversationState.model_validate(stored) if stored
                 else ConversationState(language=worker.language))
        if event.kind is InboundKind.TEXT and not state.language_confirmed and not event.detected_language:
            event = event.model_copy(update={"detected_language": detect_language(event.text)})
        repo.add_inbound(worker, event.kind.value, event.text or ",".join(event.choice_ids),
                         _inbound_payload(event), state.step, provider_event_id, now)
        result = step(state, event, now, self.book)
        repo.save_state(worker.id, result.state.model_dump(mode="json"), now)  # type: ignore[arg-type]
        for out in result.outbound:
            repo.add_outbound(worker, out, now)
        for effect in result.effects:
            self._apply(repo, worker, effect, result.state, now)
        worker.last_active_at = now
        if event.kind is not InboundKind.UNFOLLOW:
            worker.reachable = True  # they wrote to us, so we may write back
            worker.last_inbound_at = now
        session.add(worker)
        if self.outbox is not None:
            self.outbox.enqueue(session, worker, result.outbound, now, reply_token=reply_token,
                                reply_token_expires_at=reply_token_expires_at)
        return result.outbound

    def _apply(self, repo: ConversationRepository, worker: Worker, effect: Effect, state: ConversationState,
               now: datetime) -> None:
        data = effect.data
        if effect.type == "profile":
            for field in ("language", "employer_code", "residence_status", "prefecture"):
                if field in data:
                    setattr(worker, field, data[field])
            if "consent" in data:
                worker.consent = data["consent"]
                worker.consent_at = now
        elif effect.type == "sheet_started":
            repo.start_session(worker, now)
        elif effect.type == "sheet_abandoned":
            repo.abandon_session(worker)
        elif effect.type == "answer":
            repo.record_answer(worker, data["question"], data["value"], data["raw"], now)
        elif effect.type == "sheet_completed":
            fee = data["answers"].get("Q2")
            fee_jpy = int(fee["jpy"]) if isinstance(fee, dict) and fee.get("jpy") is not None else None
            repo.complete_session(worker, data["level"], data["indicators"], data["findings"], fee_jpy, now)
        elif effect.type == "handoff":
            summary = {"level": data.get("level") or state.last_level,
                       "indicators": data.get("indicators", []), "step": state.step}
            repo.request_handoff(worker, data["priority"], data["reason"], data.get("language", worker.language),
                                 summary, now)
        elif effect.type == "opt_out":
            worker.opted_out = bool(data.get("value"))
        elif effect.type == "unreachable":
            worker.reachable = False
        repo.session.add(worker)

    def history(self, channel: str, channel_user_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """The conversation as the worker saw it (for reopening the web chat)."""
        with self.db.session() as session:
            repo = ConversationRepository(session)
            worker = repo.find_worker(channel, channel_user_id)
            if not worker:
                return []
            return [{"direction": m.direction, **(m.payload if m.direction == "out" else {"text": m.text})}
                    for m in repo.transcript(worker.id, limit)]  # type: ignore[arg-type]


def _inbound_payload(event: InboundEvent) -> dict[str, Any]:
    return event.model_dump(mode="json", exclude_defaults=True)
