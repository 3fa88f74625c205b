"""Thin repositories: the only code that writes SQL for the conversation service."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.messages import Outbound
from bot.store.models import (
    Answer,
    ConversationStateRow,
    DiagnosisResult,
    DiagnosisSession,
    HandoffRequest,
    Message,
    Worker,
)


class ConversationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._postgres = session.get_bind().dialect.name == "postgresql"

    # ----- workers and their state ---------------------------------------------------------------------
    def worker_for_update(self, channel: str, channel_user_id: str, language: str, now: datetime) -> Worker:
        """The worker's row, created on first contact, locked until the end of the transaction so that two
        messages of one worker are never stepped at the same time (SQLite already holds the write lock)."""
        stmt = select(Worker).where(Worker.channel == channel, Worker.channel_user_id == channel_user_id)
        if self._postgres:
            stmt = stmt.with_for_update()
        worker = self.session.exec(stmt).first()
        if worker:
            return worker
        worker = Worker(channel=channel, channel_user_id=channel_user_id, language=language, created_at=now,
                        last_active_at=now)
        try:
            with self.session.begin_nested():
                self.session.add(worker)
        except IntegrityError:  # another process created it a moment ago
            worker = self.session.exec(stmt).one()
        return worker

    def find_worker(self, channel: str, channel_user_id: str) -> Worker | None:
        return self.session.exec(
            select(Worker).where(Worker.channel == channel, Worker.channel_user_id == channel_user_id)).first()

    def load_state(self, worker_id: int) -> dict[str, Any] | None:
        row = self.session.get(ConversationStateRow, worker_id)
        return dict(row.state) if row else None

    def save_state(self, worker_id: int, state: dict[str, Any], now: datetime) -> None:
        row = self.session.get(ConversationStateRow, worker_id)
        if row is None:
            self.session.add(ConversationStateRow(worker_id=worker_id, state=state, version=1, updated_at=now))
        else:
            row.state = state
            row.version += 1
            row.updated_at = now
            self.session.add(row)

    # ----- messages ------------------------------------------------------------------------------------
    def already_received(self, channel: str, provider_event_id: str) -> bool:
        return self.session.exec(select(Message.id).where(
            Message.channel == channel, Message.provider_event_id == provider_event_id)).first() is not None

    def add_inbound(self, worker: Worker, kind: str, text: str, payload: dict[str, Any], question: str | None,
                    provider_event_id: str | None, now: datetime) -> Message:
        msg = Message(worker_id=worker.id, channel=worker.channel, direction="in", kind=kind, text=text,
                      payload=payload, question=question, provider_event_id=provider_event_id, created_at=now)
        self.session.add(msg)
        return msg

    def add_outbound(self, worker: Worker, out: Outbound, now: datetime) -> Message:
        msg = Message(worker_id=worker.id, channel=worker.channel, direction="out", kind=out.kind.value,
                      text=out.text, payload=out.as_json(), question=out.question, created_at=now)
        self.session.add(msg)
        return msg

    def transcript(self, worker_id: int, limit: int = 200) -> list[Message]:
        rows = self.session.exec(select(Message).where(Message.worker_id == worker_id)
                                 .order_by(Message.id.desc()).limit(limit)).all()  # type: ignore[union-attr]
        return list(reversed(rows))

    # ----- the sheet -----------------------------------------------------------------------------------
    def open_session(self, worker: Worker) -> DiagnosisSession | None:
        return self.session.exec(select(DiagnosisSession).where(
            DiagnosisSession.worker_id == worker.id, DiagnosisSession.status == "in_progress")
            .order_by(DiagnosisSession.id.desc())).first()  # type: ignore[union-attr]

    def start_session(self, worker: Worker, now: datetime) -> DiagnosisSession:
        current = self.open_session(worker)
        if current:
            return current
        sheet = DiagnosisSession(worker_id=worker.id, employer_code=worker.employer_code, started_at=now)
        self.session.add(sheet)
        self.session.flush()
        return sheet

    def abandon_session(self, worker: Worker) -> None:
        current = self.open_session(worker)
        if current:
            current.status = "abandoned"
            self.session.add(current)

    def record_answer(self, worker: Worker, question_id: str, value: Any, raw: str, now: datetime) -> None:
        sheet = self.start_session(worker, now)
        existing = self.session.exec(select(Answer).where(
            Answer.session_id == sheet.id, Answer.question_id == question_id)).first()
        if existing:
            existing.value, existing.raw_text, existing.answered_at = value, raw, now
            self.session.add(existing)
        else:
            self.session.add(Answer(session_id=sheet.id, question_id=question_id, value=value, raw_text=raw,
                                    answered_at=now))

    def complete_session(self, worker: Worker, level: str, indicators: list[str], findings: list[dict[str, Any]],
                         fee_jpy: int | None, now: datetime) -> DiagnosisResult:
        sheet = self.start_session(worker, now)
        sheet.status, sheet.completed_at = "completed", now
        self.session.add(sheet)
        result = DiagnosisResult(session_id=sheet.id, worker_id=worker.id, employer_code=sheet.employer_code,
                                 level=level, indicators=indicators, findings=findings, fee_jpy=fee_jpy,
                                 created_at=now)
        self.session.add(result)
        return result

    def answers_of(self, session_id: int) -> dict[str, Any]:
        return {a.question_id: a.value for a in self.session.exec(
            select(Answer).where(Answer.session_id == session_id)).all()}

    def results_of(self, worker_id: int) -> list[DiagnosisResult]:
        return list(self.session.exec(select(DiagnosisResult).where(DiagnosisResult.worker_id == worker_id)
                                      .order_by(DiagnosisResult.id)).all())  # type: ignore[arg-type]

    # ----- help ----------------------------------------------------------------------------------------
    def request_handoff(self, worker: Worker, priority: str, reason: str, language: str,
                        summary: dict[str, Any], now: datetime) -> HandoffRequest:
        """One open request per worker; a more urgent trigger raises the priority of the waiting one."""
        rank = {"urgent": 3, "critical": 2, "normal": 1}
        waiting = self.session.exec(select(HandoffRequest).where(
            HandoffRequest.worker_id == worker.id, HandoffRequest.status == "waiting")).first()
        if waiting:
            if rank.get(priority, 0) > rank.get(waiting.priority, 0):
                waiting.priority = priority
            waiting.summary = {**waiting.summary, **summary, "reasons": [*waiting.summary.get("reasons", []), reason]}
            self.session.add(waiting)
            return waiting
        request = HandoffRequest(worker_id=worker.id, priority=priority, reason=reason, language=language,
                                 channel=worker.channel, summary={**summary, "reasons": [reason]}, created_at=now)
        self.session.add(request)
        return request

    def handoffs_of(self, worker_id: int) -> list[HandoffRequest]:
        return list(self.session.exec(select(HandoffRequest).where(HandoffRequest.worker_id == worker_id)).all())
