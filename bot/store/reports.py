"""The rows the reports are built from (bot/reports.py does the counting and the suppression). Only levels,
scored findings, categories and timestamps are read: never a message, an answer's text or a note."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import select

from bot.reports import CaseFacts, CompletedSheet
from bot.store.db import Database
from bot.store.models import AuditEntry, DiagnosisResult, HandoffRequest, Worker

OPEN_STATUSES = ("waiting", "assigned")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def completed_sheets(db: Database, employer_code: str, start: datetime, end: datetime) -> list[CompletedSheet]:
    """The employer's completed sheets in [start, end): one per diagnosis_result (written when a sheet
    is completed, with the employer code the sheet was started under)."""
    with db.session() as s:
        rows = s.exec(select(DiagnosisResult.worker_id, DiagnosisResult.created_at, DiagnosisResult.level,
                             DiagnosisResult.findings)
                      .where(DiagnosisResult.employer_code == employer_code,
                             DiagnosisResult.created_at >= start, DiagnosisResult.created_at < end)).all()
    return [CompletedSheet(person=worker_id, completed_at=_aware(at), level=level,
                           finding_ids=tuple(str(f["id"]) for f in findings or []),
                           indicators=tuple(str(f["indicator"]) for f in findings or []))
            for worker_id, at, level, findings in rows]


def _facts(db: Database, *conditions: object) -> list[CaseFacts]:
    with db.session() as s:
        first_reply = (select(AuditEntry.handoff_id, func.min(AuditEntry.created_at).label("at"))
                       .where(AuditEntry.action == "reply").group_by(AuditEntry.handoff_id).subquery())
        rows = s.exec(select(HandoffRequest.worker_id, HandoffRequest.created_at, HandoffRequest.status,
                             HandoffRequest.priority, HandoffRequest.language, HandoffRequest.channel,
                             HandoffRequest.category, HandoffRequest.subcategory, Worker.residence_status,
                             Worker.prefecture, first_reply.c.at)
                      .join(Worker, Worker.id == HandoffRequest.worker_id)
                      .outerjoin(first_reply, first_reply.c.handoff_id == HandoffRequest.id)
                      .where(*conditions)).all()
    return [CaseFacts(person=r[0], created_at=_aware(r[1]), status=r[2], priority=r[3], language=r[4], channel=r[5],
                      category=r[6], subcategory=r[7], residence_status=r[8], prefecture=r[9],
                      first_reply_at=_aware(r[10]) if r[10] else None) for r in rows]


def handoff_facts(db: Database, start: datetime, end: datetime) -> list[CaseFacts]:
    """Handoffs created in [start, end), with the time of the first counsellor reply (from the audit log)."""
    return _facts(db, HandoffRequest.created_at >= start, HandoffRequest.created_at < end)


def open_handoff_facts(db: Database) -> Sequence[CaseFacts]:
    return _facts(db, HandoffRequest.status.in_(OPEN_STATUSES))  # type: ignore[attr-defined]
