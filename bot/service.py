"""The conversation service: for each inbound event, load the worker's state, step the engine and save the
new state, the messages and their effects in one transaction, so that nothing is lost or half-written."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlmodel import Session

from bot.engine import ConversationState, Effect, reaches_bot_while_counsellor_holds, step
from bot.flowbook import FlowBook, default_flowbook
from bot.messages import InboundEvent, InboundKind, Outbound
from bot.office import OfficeHours
from bot.outbox import Outbox
from bot.store.db import Database
from bot.store.models import HandoffRequest, Worker
from bot.store.repository import ConversationRepository, StoredState
from nlu.langid import detect_language
from nlu.service import Interpretation, NluService

Clock = Callable[[], datetime]


class ReadAhead(NamedTuple):
    """What the NLU made of a turn's text before the turn's transaction began, and in which language."""

    language: str | None
    interpretation: Interpretation


class Turn(NamedTuple):
    """One inbound event of one worker, as the service steps it."""

    channel: str
    channel_user_id: str
    event: InboundEvent
    provider_event_id: str | None = None
    reply_token: str | None = None
    reply_token_expires_at: datetime | None = None
    read_ahead: ReadAhead | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)


class ConversationService:
    def __init__(self, db: Database, book: FlowBook | None = None, clock: Clock = utcnow,
                 default_language: str = "en", outbox: Outbox | None = None,
                 office_hours: OfficeHours | None = None, nlu: NluService | None = None) -> None:
        self.db = db
        self.book = book or default_flowbook()
        self.clock = clock
        self.default_language = default_language
        self.outbox = outbox
        self.office_hours = office_hours
        self.nlu = nlu
        # The language each worker stepped here last had confirmed (None: not yet), so that reading ahead asks
        # the database only about workers it has not seen; a stale entry costs a second reading, never a wrong one.
        self._confirmed_languages: dict[tuple[str, str], str | None] = {}

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
        turn = Turn(channel, channel_user_id, event, provider_event_id, reply_token, reply_token_expires_at)
        return self.handle_many(session, [turn])[0]

    def read_ahead(self, turns: Sequence[Turn | None]) -> list[Turn | None]:
        """Lets the NLU read the texts of turns about to be stepped before their transaction, in the language
        each worker has confirmed so far: no database lock is held while the classifier (or a Rasa server, up
        to its timeout) works. A turn whose worker's language changes before it is stepped is read again."""
        texts = [t for t in turns if t is not None and t.event.kind is InboundKind.TEXT and t.event.text]
        if self.nlu is None or not texts:
            return list(turns)
        keys = {(t.channel, t.channel_user_id) for t in texts}
        known = self._confirmed_languages
        languages: dict[tuple[str, str], str | None] = {key: known[key] for key in keys if key in known}
        if len(languages) < len(keys):
            with self.db.reading() as session:
                languages.update(ConversationRepository(session).confirmed_languages(keys - languages.keys()))
        ahead: dict[int, Turn] = {}
        for t in texts:
            language = languages.get((t.channel, t.channel_user_id))
            ahead[id(t)] = t._replace(read_ahead=ReadAhead(language, self.nlu.interpret(t.event.text or "", language)))
        return [ahead.get(id(t), t) for t in turns]

    def create_new_workers(self, turns: Sequence[Turn | None]) -> None:
        """The rows of people writing for the first time, in a short transaction of their own, so that stepping
        their first message only reads before it writes (see Database.read_then_write)."""
        keys = self._worker_keys([t for t in turns if t is not None])
        if not keys:
            return
        with self.db.reading() as session:
            unknown = ConversationRepository(session).unknown_workers(set(keys))
        if unknown:
            with self.db.session() as session:
                ConversationRepository(session).workers_for_update({k: keys[k] for k in unknown}, self.clock())

    def _worker_keys(self, turns: Sequence[Turn]) -> dict[tuple[str, str], str]:
        """(channel, user id) of each turn's worker -> the language a new worker starts in."""
        return {(t.channel, t.channel_user_id): t.event.language_hint or self.default_language for t in turns}

    def handle_many(self, session: Session, turns: list[Turn],
                    before_writing: Callable[[], None] | None = None) -> list[list[Outbound]]:
        """Steps several turns (of one or many workers, in order) in the caller's transaction. Workers, states
        and duplicates are looked up once for all of them: a busy webhook queue costs a few queries per batch
        rather than per message. ``before_writing`` is called once everything is decided, before the first write
        (see Database.read_then_write)."""
        now = self.clock()
        repo = ConversationRepository(session)
        keys = self._worker_keys(turns)
        workers = repo.workers_for_update(keys, now)
        states = repo.load_states([w.id for w in workers.values()])  # type: ignore[misc]
        seen = repo.received_event_ids([(t.channel, t.provider_event_id) for t in turns if t.provider_event_id])
        held = repo.held_by_counsellor([w.id for w in workers.values()])  # type: ignore[misc]
        repo.preload_sheets([w.id for w in workers.values()])  # type: ignore[misc]
        replies: list[list[Outbound]] = []
        for turn in turns:
            if turn.provider_event_id and (turn.channel, turn.provider_event_id) in seen:
                replies.append([])
                continue
            if turn.provider_event_id:
                seen.add((turn.channel, turn.provider_event_id))
            worker = workers[(turn.channel, turn.channel_user_id)]
            if worker.channel_user_id != turn.channel_user_id:  # erased earlier in this batch: a new person now
                worker = workers[(turn.channel, turn.channel_user_id)] = repo.worker_for_update(
                    turn.channel, turn.channel_user_id, keys[(turn.channel, turn.channel_user_id)], now)
            replies.append(self._turn(repo, worker, states, turn, now, held=worker.id in held))
        if before_writing is not None:
            before_writing()
        repo.write_new_rows()
        return replies

    def write_first(self, session: Session, worker: Worker, event: InboundEvent, now: datetime,
                    source: str = "nudge") -> list[Outbound]:
        """Steps a conversation the bot opens itself (a nudge), in the caller's transaction. The worker did
        not write, so nothing about their activity changes (Messenger's 24-hour window stays as it was)."""
        repo = ConversationRepository(session)
        stored = repo.load_states([worker.id]).get(worker.id)  # type: ignore[list-item,arg-type]
        state = (ConversationState.model_validate(stored.state) if stored
                 else ConversationState(language=worker.language))
        result = step(state, event, now, self.book)
        if not result.outbound and not result.effects:
            return []
        repo.save_state_row(stored, worker.id, result.state.model_dump(mode="json"), now)  # type: ignore[arg-type]
        for out in result.outbound:
            repo.add_outbound(worker, out, now)
        for effect in result.effects:
            self._apply(repo, worker, effect, result.state, now)
        if self.outbox is not None:
            self.outbox.enqueue(session, worker, result.outbound, now, source=source, into=repo.new_outbox)
        repo.write_new_rows()
        return result.outbound

    def _turn(self, repo: ConversationRepository, worker: Worker, states: dict[int, StoredState],
              turn: Turn, now: datetime, held: bool = False) -> list[Outbound]:
        event = turn.event
        stored = states.get(worker.id)  # type: ignore[arg-type]
        state = (ConversationState.model_validate(stored.state) if stored
                 else ConversationState(language=worker.language))
        learned: dict[str, Any] = {}  # what the service adds to the event before the engine reads it (one copy)
        if event.kind is InboundKind.TEXT and self.nlu is not None and event.text:
            language = state.language if state.language_confirmed else None
            ahead = turn.read_ahead
            understood = (ahead.interpretation if ahead is not None and ahead.language == language
                          else self.nlu.interpret(event.text, language))
            learned.update(intent=understood.intent, intent_confidence=understood.confidence,
                           danger=understood.danger, detected_language=event.detected_language or understood.language)
        elif event.kind is InboundKind.TEXT and not state.language_confirmed and not event.detected_language:
            learned["detected_language"] = detect_language(event.text)  # without the NLU (it guesses as well)
        if self.office_hours is not None and event.kind in (InboundKind.TEXT, InboundKind.CHOICE):
            learned["counsellor_hours"] = self.office_hours.for_worker(now)
        if learned:
            event = event.model_copy(update=learned)
        repo.add_inbound(worker, event.kind.value, event.text or ",".join(event.choice_ids),
                         _inbound_payload(event), state.step, turn.provider_event_id, now)
        if held and not reaches_bot_while_counsellor_holds(state, event, self.book):
            # The counsellor answers this one; the inbox shows it from the stored message.
            repo.change_worker(worker, last_active_at=now, last_inbound_at=now, reachable=True)
            repo.touch_handoff(worker.id, now)  # type: ignore[arg-type]
            return []
        result = step(state, event, now, self.book)
        if any(effect.type == "erase" for effect in result.effects):
            return self._erase(repo, worker, turn, result.outbound, now)
        states[worker.id] = repo.save_state_row(stored, worker.id, result.state.model_dump(mode="json"), now)  # type: ignore[index,arg-type]
        if len(self._confirmed_languages) > 100_000:
            self._confirmed_languages.clear()
        self._confirmed_languages[(turn.channel, turn.channel_user_id)] = (
            result.state.language if result.state.language_confirmed else None)
        for out in result.outbound:
            repo.add_outbound(worker, out, now)
        for effect in result.effects:
            self._apply(repo, worker, effect, result.state, now)
        if event.kind is InboundKind.UNFOLLOW:
            repo.change_worker(worker, last_active_at=now)
        else:  # they wrote to us, so we may write back
            repo.change_worker(worker, last_active_at=now, last_inbound_at=now, reachable=True)
        if self.outbox is not None:
            self.outbox.enqueue(repo.session, worker, result.outbound, now, reply_token=turn.reply_token,
                                reply_token_expires_at=turn.reply_token_expires_at, into=repo.new_outbox)
        return result.outbound

    def _apply(self, repo: ConversationRepository, worker: Worker, effect: Effect, state: ConversationState,
               now: datetime) -> None:
        data = effect.data
        if effect.type == "profile":
            repo.change_worker(worker, **{field: data[field] for field in
                                          ("language", "employer_code", "residence_status", "prefecture")
                                          if field in data})
            if "consent" in data:
                repo.change_worker(worker, consent=data["consent"], consent_at=now)
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
        elif effect.type == "followup_answer" and data.get("handoff_id") is not None:
            case = repo.session.get(HandoffRequest, data["handoff_id"])
            if case is not None and case.worker_id == worker.id:
                case.followup_answer, case.followup_at = str(data["value"]), now
                repo.session.add(case)
        elif effect.type == "opt_out":
            repo.change_worker(worker, opted_out=bool(data.get("value")))
        elif effect.type == "unreachable":
            repo.change_worker(worker, reachable=False)

    def _erase(self, repo: ConversationRepository, worker: Worker, turn: Turn, last_words: list[Outbound],
               now: datetime) -> list[Outbound]:
        """The worker confirmed "delete my data": their last message goes out (an outbox row of source 'erasure',
        scrubbed by the dispatcher once it has an outcome), then everything that is theirs is erased in this
        same transaction. Nothing of this turn is stored as a message."""
        from bot.privacy import erase_worker

        repo.forget_unwritten(worker.id)  # type: ignore[arg-type]
        if self.nlu is not None:
            self.nlu.forget_short_texts()
        if self.outbox is not None:
            self.outbox.enqueue(repo.session, worker, last_words, now, reply_token=turn.reply_token,
                                reply_token_expires_at=turn.reply_token_expires_at, source="erasure")
        erase_worker(repo.session, worker.id, now)  # type: ignore[arg-type]
        return last_words

    def history(self, channel: str, channel_user_id: str, limit: int = 200,
                after_id: int | None = None) -> list[dict[str, Any]]:
        """The conversation as the worker saw it (for reopening the web chat), or what came after a message
        (a counsellor's answers, for a web chat that is open)."""
        with self.db.session() as session:
            repo = ConversationRepository(session)
            worker = repo.find_worker(channel, channel_user_id)
            if not worker:
                return []
            return [{"id": m.id, "direction": m.direction,
                     **(m.payload if m.direction == "out" else {"text": m.text})}
                    for m in repo.transcript(worker.id, limit, after_id)]  # type: ignore[arg-type]


def _inbound_payload(event: InboundEvent) -> dict[str, Any]:
    return event.model_dump(mode="json", exclude_defaults=True)
