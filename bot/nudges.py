"""Check-in nudges: the bot writes first, in the worker's language, at most once for each occasion.

- re-invitation to the self-diagnosis every REINVITE_DAYS after the last completed sheet (or the consent);
- reminders of an unfinished sheet REMINDER_HOURS after the worker last wrote (at most two per sheet);
- a follow-up FOLLOWUP_DAYS after a counsellor resolved the worker's case ("did things get better?").

Each nudge is first written to `nudge_log` under a unique key, in the same transaction as the conversation
step and its outbox rows: a second scheduler, or the same one running twice, finds the key taken and does
nothing. Nothing is planned in quiet hours (the nudges wait, still due, for the morning); nobody who said
stop, never agreed to the privacy notice, cannot be reached, or is talking to a counsellor gets one.
"""
from __future__ import annotations

import logging
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from bot.messages import InboundEvent, InboundKind
from bot.sendrules import QuietHours
from bot.service import ConversationService
from bot.settings import Settings
from bot.store.db import Database, as_utc
from bot.store.models import DiagnosisResult, DiagnosisSession, HandoffRequest, NudgeLog, Worker

log = logging.getLogger("mirai.nudges")
Clock = Callable[[], datetime]
CONVERSATION_LOCKS = 7_303  # the inbound processors' namespace: a nudge never steps a conversation beside them

W = Worker.__table__
S = DiagnosisSession.__table__
R = DiagnosisResult.__table__
H = HandoffRequest.__table__
N = NudgeLog.__table__


@dataclass(frozen=True)
class Nudge:
    worker_id: int
    kind: str  # reinvite, reminder, followup
    ref: str
    case_id: int | None = None


class NudgePlanner:
    def __init__(self, db: Database, service: ConversationService, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.service = service
        self.clock = clock
        self.quiet = QuietHours.parse(settings.quiet_hours, settings.timezone)
        self.reinvite = timedelta(days=settings.reinvite_days)
        hours = sorted(float(h) for h in settings.reminder_hours.split(",") if h.strip())[:2]
        self.reminders = [timedelta(hours=h) for h in hours]
        self.followup = timedelta(days=settings.followup_days)

    # ----- what is due ---------------------------------------------------------------------------------
    def _writable(self) -> Any:
        """Workers we may write to first, on a channel that can carry it, with no case open."""
        other = H.alias("open_case")
        open_case = exists().where(other.c.worker_id == W.c.id, other.c.status.in_(("waiting", "assigned")))
        channels = list(self.service.outbox.channels) if self.service.outbox is not None else []
        return and_(W.c.consent.is_(True), W.c.opted_out.is_(False), W.c.reachable.is_(True),
                    W.c.channel.in_(channels), ~open_case)

    def due(self, now: datetime, limit: int = 5000) -> list[Nudge]:
        with self.db.session() as s:
            found = (self._due_reminders(s, now, limit) + self._due_followups(s, now, limit)
                     + self._due_reinvites(s, now, limit))
        return found[:limit]

    def _logged(self, s: Any, kind: str, worker_ids: list[int]) -> dict[tuple[int, str], datetime]:
        if not worker_ids:
            return {}
        rows = s.execute(select(N.c.worker_id, N.c.ref, N.c.created_at).where(
            N.c.kind == kind, N.c.worker_id.in_(worker_ids))).all()
        return {(r.worker_id, r.ref): as_utc(r.created_at) for r in rows}

    def _due_reminders(self, s: Any, now: datetime, limit: int) -> list[Nudge]:
        if not self.reminders:
            return []
        last_seen = func.coalesce(W.c.last_inbound_at, S.c.started_at)
        rows = s.execute(select(S.c.id, S.c.worker_id, last_seen.label("last_seen"))
                         .join(W, W.c.id == S.c.worker_id)
                         .where(S.c.status == "in_progress", self._writable(), last_seen <= now - self.reminders[0])
                         .order_by(S.c.id).limit(limit)).all()
        logged = self._logged(s, "reminder", [r.worker_id for r in rows])
        due = []
        for r in rows:
            quiet_for = now - as_utc(r.last_seen)
            first = logged.get((r.worker_id, f"{r.id}:1"))
            if first is None:
                due.append(Nudge(r.worker_id, "reminder", f"{r.id}:1"))
            elif (len(self.reminders) > 1 and (r.worker_id, f"{r.id}:2") not in logged
                  and quiet_for >= self.reminders[1]
                  and now - first >= self.reminders[1] - self.reminders[0]):
                due.append(Nudge(r.worker_id, "reminder", f"{r.id}:2"))
        return due

    def _due_followups(self, s: Any, now: datetime, limit: int) -> list[Nudge]:
        # A week after the case closed; cases older than two such spans are not asked about any more.
        rows = s.execute(select(H.c.id, H.c.worker_id).join(W, W.c.id == H.c.worker_id).where(
            H.c.status == "resolved", H.c.followup_answer.is_(None),
            H.c.resolved_at <= now - self.followup, H.c.resolved_at > now - 2 * self.followup,
            self._writable()).order_by(H.c.id).limit(limit)).all()
        logged = self._logged(s, "followup", [r.worker_id for r in rows])
        return [Nudge(r.worker_id, "followup", str(r.id), r.id) for r in rows
                if (r.worker_id, str(r.id)) not in logged]

    def _due_reinvites(self, s: Any, now: datetime, limit: int) -> list[Nudge]:
        last_sheet = (select(func.max(R.c.created_at)).where(R.c.worker_id == W.c.id)
                      .correlate(W).scalar_subquery())
        base = func.coalesce(last_sheet, W.c.consent_at)
        in_progress = exists().where(S.c.worker_id == W.c.id, S.c.status == "in_progress")
        rows = s.execute(select(W.c.id, base.label("base")).where(
            self._writable(), ~in_progress, base <= now - self.reinvite).order_by(W.c.id).limit(limit)).all()
        logged = self._logged(s, "reinvite", [r.id for r in rows])
        due = []
        for r in rows:
            since = as_utc(r.base)
            period = int((now - since) / self.reinvite)  # the 1st, 2nd, ... span of REINVITE_DAYS
            ref = f"{since:%Y%m%d%H%M%S}:{period}"
            if (r.id, ref) not in logged:
                due.append(Nudge(r.id, "reinvite", ref))
        return due

    # ----- sending -------------------------------------------------------------------------------------
    def run(self, now: datetime | None = None, limit: int = 5000) -> dict[str, int]:
        """Writes the nudges due now; returns counts by outcome ("reminder sent", "followup skipped: ...")."""
        now = now or self.clock()
        counts: Counter[str] = Counter()
        if self.quiet.is_quiet(now):
            return dict(counts)  # still due in the morning
        for nudge in self.due(now, limit):
            counts[f"{nudge.kind} {self._write(nudge, now)}"] += 1
        if counts:
            log.info("nudges: %s", dict(counts))
        return dict(counts)

    def _write(self, nudge: Nudge, now: datetime) -> str:
        with self.db.session() as s:
            worker = s.get(Worker, nudge.worker_id)
            if worker is None:
                return "gone"
            if self.db.is_postgres:
                s.execute(text("SELECT pg_advisory_xact_lock(:ns, :key)"), {
                    "ns": CONVERSATION_LOCKS,
                    "key": zlib.crc32(f"{worker.channel}:{worker.channel_user_id}".encode()) & 0x7FFFFFFF})
            dialect = postgresql if self.db.is_postgres else sqlite
            claimed = s.execute(dialect.insert(N).values(
                worker_id=nudge.worker_id, kind=nudge.kind, ref=nudge.ref, outcome="sent", created_at=now)
                .on_conflict_do_nothing(index_elements=["worker_id", "kind", "ref"]).returning(N.c.id)).first()
            if claimed is None:
                s.rollback()
                return "already sent"  # by another scheduler, a moment ago
            s.refresh(worker)
            outcome = self._why_not(worker, now)
            if outcome is None:
                event = InboundEvent(kind=InboundKind.NUDGE, nudge=nudge.kind, nudge_ref=nudge.case_id)
                said = self.service.write_first(s, worker, event, now)
                outcome = "sent" if said else "not needed"
            if outcome != "sent":
                s.execute(N.update().where(N.c.worker_id == nudge.worker_id, N.c.kind == nudge.kind,
                                           N.c.ref == nudge.ref).values(outcome=outcome))
            s.commit()
        return outcome if outcome in ("sent", "not needed") else f"skipped: {outcome}"

    def _why_not(self, worker: Worker, now: datetime) -> str | None:
        if worker.opted_out or not worker.reachable or not worker.consent:
            return "opted out or unreachable"
        channel = self.service.outbox.channels.get(worker.channel) if self.service.outbox else None
        if channel is None:
            return "no messaging channel"
        return channel.may_write_first(as_utc(worker.last_inbound_at) if worker.last_inbound_at else None, now)
