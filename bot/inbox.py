"""The counsellors' side of a handoff: accounts, the queue, claiming, reading a transcript in one's own
language, replying in the worker's language through the worker's channel, notes, categories, transfer,
resolution, and an audit trail of every read and write. No web framework here: admin_api wraps it."""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, insert, update
from sqlmodel import Session, select

from bot.engine import EMPLOYER_CODE
from bot.flowbook import FlowBook
from bot.messages import Outbound, OutboundKind
from bot.outbox import Outbox
from bot.store.db import Database, as_utc
from bot.store.models import (
    AuditEntry,
    CaseNote,
    ConversationStateRow,
    HandoffRequest,
    Message,
    StaffToken,
    StaffUser,
    Worker,
)
from bot.translation import Translator

INBOX_ROLES = ("counsellor", "supervisor", "admin")  # the people who read and answer workers
ROLES = (*INBOX_ROLES, "employer")  # an employer reads its own employer report, nothing else
STAFF_LANGUAGES = ("ja", "en")
STATUSES = ("waiting", "assigned", "resolved")
PRIORITY_ORDER = {"urgent": 0, "critical": 1, "normal": 2}
CATEGORIES_FILE = Path(__file__).resolve().parent / "flows" / "consultation_categories.yaml"
_hasher = PasswordHasher()


class InboxError(Exception):
    status_code = 400


class NotFound(InboxError):
    status_code = 404


class Conflict(InboxError):
    status_code = 409


class Forbidden(InboxError):
    status_code = 403


@dataclass(frozen=True)
class Login:
    token: str
    expires_at: datetime
    user: StaffUser


@lru_cache
def consultation_categories() -> list[dict[str, Any]]:
    return list(yaml.safe_load(CATEGORIES_FILE.read_text(encoding="utf-8"))["categories"])


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InboxService:
    def __init__(self, db: Database, book: FlowBook, translator: Translator, outbox: Outbox | None,
                 clock: Callable[[], datetime], token_hours: float = 10.0,
                 on_change: Callable[[], None] | None = None) -> None:
        self.db = db
        self.book = book
        self.translator = translator
        self.outbox = outbox
        self.clock = clock
        self.token_lifetime = timedelta(hours=token_hours)
        self.on_change = on_change or (lambda: None)

    # ----- accounts ------------------------------------------------------------------------------------
    def add_user(self, name: str, role: str, password: str, language: str = "ja",
                 employer_code: str | None = None) -> StaffUser:
        if role not in ROLES:
            raise InboxError(f"role must be one of {', '.join(ROLES)}")
        if role == "employer":
            employer_code = (employer_code or "").strip().upper()
            if not EMPLOYER_CODE.fullmatch(employer_code):
                raise InboxError("an employer account needs its employer code (4 to 20 letters, digits or -)")
        elif employer_code:
            raise InboxError("only an employer account has an employer code")
        if language not in STAFF_LANGUAGES:
            raise InboxError(f"language must be one of {', '.join(STAFF_LANGUAGES)}")
        if len(password) < 10:
            raise InboxError("the password needs at least 10 characters")
        with self.db.session() as s:
            if s.exec(select(StaffUser).where(StaffUser.name == name)).first():
                raise Conflict(f"a user called {name!r} exists")
            user = StaffUser(name=name, role=role, password_hash=_hasher.hash(password), language=language,
                             created_at=self.clock(), employer_code=employer_code or None)
            s.add(user)
            s.flush()
            s.refresh(user)
            return user

    def login(self, name: str, password: str) -> Login | None:
        now = self.clock()
        with self.db.session() as s:
            user = s.exec(select(StaffUser).where(StaffUser.name == name, StaffUser.active == True)).first()  # noqa: E712
            try:
                ok = user is not None and _hasher.verify(user.password_hash, password)
            except (VerificationError, InvalidHashError):
                ok = False
            if not ok or user is None:
                return None
            token = secrets.token_urlsafe(32)
            expires = now + self.token_lifetime
            s.add(StaffToken(token_hash=_token_hash(token), user_id=user.id, created_at=now, expires_at=expires))  # type: ignore[arg-type]
            self._audit(s, user, "login", now)
            return Login(token, expires, user)

    def user_for_token(self, token: str) -> StaffUser | None:
        now = self.clock()
        with self.db.session() as s:
            row = s.get(StaffToken, _token_hash(token))
            if row is None or as_utc(row.expires_at) <= now:
                return None
            user = s.get(StaffUser, row.user_id)
            return user if user is not None and user.active else None

    def logout(self, token: str) -> None:
        with self.db.session() as s:
            row = s.get(StaffToken, _token_hash(token))
            if row is not None:
                s.delete(row)

    def users(self) -> list[StaffUser]:
        """The people a conversation can be transferred to (employer accounts never hold one)."""
        with self.db.session() as s:
            return list(s.exec(select(StaffUser).where(StaffUser.active == True,  # noqa: E712
                                                       StaffUser.role.in_(INBOX_ROLES))  # type: ignore[attr-defined]
                               .order_by(StaffUser.name)))

    # ----- the queue -----------------------------------------------------------------------------------
    def conversations(self, viewer: StaffUser, *, status: str | None = None, priority: str | None = None,
                      language: str | None = None, channel: str | None = None,
                      mine: bool = False) -> list[dict[str, Any]]:
        with self.db.session() as s:
            query = select(HandoffRequest, Worker).join(Worker, Worker.id == HandoffRequest.worker_id)
            if status:
                query = query.where(HandoffRequest.status == status)
            else:
                query = query.where(HandoffRequest.status.in_(("waiting", "assigned")))  # type: ignore[attr-defined]
            if priority:
                query = query.where(HandoffRequest.priority == priority)
            if language:
                query = query.where(HandoffRequest.language == language)
            if channel:
                query = query.where(HandoffRequest.channel == channel)
            if mine:
                query = query.where(HandoffRequest.assigned_to == viewer.id)
            rows = s.exec(query.order_by(HandoffRequest.created_at).limit(500)).all()
            names = self._names(s)
            last = self._last_messages(s, [w.id for _, w in rows])  # type: ignore[misc]
            items = [self._summary(h, w, names, last.get(w.id)) for h, w in rows]  # type: ignore[arg-type]
        items.sort(key=lambda i: (PRIORITY_ORDER.get(i["priority"], 9), i["created_at"]))
        return items

    def claim(self, handoff_id: int, user: StaffUser) -> dict[str, Any]:
        """One counsellor at a time: the first claim wins, a second gets Conflict."""
        now = self.clock()
        with self.db.session() as s:
            won = s.execute(update(HandoffRequest).where(
                HandoffRequest.id == handoff_id, HandoffRequest.status == "waiting")
                .values(status="assigned", assigned_to=user.id, claimed_at=now, updated_at=now)).rowcount
            handoff = s.get(HandoffRequest, handoff_id)
            if handoff is None:
                raise NotFound("no such conversation")
            if not won and handoff.assigned_to != user.id:
                holder = s.get(StaffUser, handoff.assigned_to) if handoff.assigned_to else None
                raise Conflict(f"already {handoff.status}" + (f" by {holder.name}" if holder else ""))
            self._audit(s, user, "claim", now, handoff)
        self.on_change()
        return self.conversation(handoff_id, user, audit=False)

    def conversation(self, handoff_id: int, viewer: StaffUser, *, audit: bool = True) -> dict[str, Any]:
        """The case with its whole transcript, each message also in the viewer's language."""
        now = self.clock()
        with self.db.session() as s:
            handoff, worker = self._case(s, handoff_id)
            messages = list(s.exec(select(Message).where(Message.worker_id == worker.id)
                                   .order_by(Message.id.desc()).limit(500)))[::-1]  # type: ignore[union-attr]
            notes = list(s.exec(select(CaseNote).where(CaseNote.handoff_id == handoff_id).order_by(CaseNote.id)))
            names = self._names(s)
            if audit:
                self._audit(s, viewer, "read_transcript", now, handoff)
            summary = self._summary(handoff, worker, names, messages[-1] if messages else None)
        summary["transcript"] = [self._shown(m, worker, viewer) for m in messages]
        summary["notes"] = [{"id": n.id, "author": names.get(n.author_id, "?"), "text": n.text,
                             "created_at": _iso(n.created_at)} for n in notes]
        return summary

    def reply(self, handoff_id: int, user: StaffUser, text: str) -> dict[str, Any]:
        """Translated into the worker's language and sent through the worker's channel; if translation fails
        the original goes out (marked untranslated) rather than nothing."""
        text = text.strip()
        if not text:
            raise InboxError("the reply is empty")
        now = self.clock()
        with self.db.session() as s:
            handoff, worker = self._case(s, handoff_id)
            self._require_holder(handoff, user)
        translation = self.translator.translate(text, user.language, worker.language)
        sent_text = translation.text
        with self.db.session() as s:
            handoff, worker = self._case(s, handoff_id)
            self._require_holder(handoff, user)
            out = Outbound(kind=OutboundKind.TEXT, text=sent_text, language=worker.language)
            payload = {**out.as_json(), "from_counsellor": True, "pushed": True, "author": user.name,
                       "original": text, "original_language": user.language,
                       "translated": translation.translated}
            row = {"worker_id": worker.id, "channel": worker.channel, "direction": "out", "kind": "counsellor",
                   "text": sent_text, "payload": payload, "question": None, "provider_event_id": None,
                   "created_at": now, "delivered_at": None}
            message_id = s.execute(insert(Message.__table__).returning(Message.__table__.c.id), [row]).scalar()  # type: ignore[attr-defined]
            if self.outbox is not None:
                self.outbox.enqueue(s, worker, [out], now, source="counsellor")
            handoff.updated_at = now
            s.add(handoff)
            self._audit(s, user, "reply", now, handoff, {"message_id": message_id,
                                                         "translated": translation.translated})
        self.on_change()
        return {"id": message_id, "text": sent_text, "original": text, "translated": translation.translated,
                "language": worker.language}

    def add_note(self, handoff_id: int, user: StaffUser, text: str) -> dict[str, Any]:
        if not text.strip():
            raise InboxError("the note is empty")
        now = self.clock()
        with self.db.session() as s:
            handoff, _ = self._case(s, handoff_id)
            note = CaseNote(handoff_id=handoff_id, author_id=user.id, text=text.strip(), created_at=now)  # type: ignore[arg-type]
            s.add(note)
            s.flush()
            self._audit(s, user, "note", now, handoff, {"note_id": note.id})
            result = {"id": note.id, "author": user.name, "text": note.text, "created_at": _iso(now)}
        self.on_change()
        return result

    def categorize(self, handoff_id: int, user: StaffUser, category: str, subcategory: str | None) -> None:
        known = {c["id"]: {sc["id"] for sc in c["subcategories"]} for c in consultation_categories()}
        if category not in known or (subcategory is not None and subcategory not in known[category]):
            raise InboxError("unknown category or sub-category")
        now = self.clock()
        with self.db.session() as s:
            handoff, _ = self._case(s, handoff_id)
            handoff.category, handoff.subcategory, handoff.updated_at = category, subcategory, now
            s.add(handoff)
            self._audit(s, user, "categorize", now, handoff, {"category": category, "subcategory": subcategory})
        self.on_change()

    def transfer(self, handoff_id: int, user: StaffUser, to_name: str) -> None:
        now = self.clock()
        with self.db.session() as s:
            handoff, _ = self._case(s, handoff_id)
            if user.role == "counsellor":
                self._require_holder(handoff, user)
            target = s.exec(select(StaffUser).where(StaffUser.name == to_name, StaffUser.active == True,  # noqa: E712
                                                    StaffUser.role.in_(INBOX_ROLES))).first()  # type: ignore[attr-defined]
            if target is None:
                raise NotFound(f"no active user called {to_name!r}")
            if handoff.status == "resolved":
                raise Conflict("the conversation is resolved")
            previous = handoff.assigned_to
            handoff.status, handoff.assigned_to, handoff.updated_at = "assigned", target.id, now
            handoff.claimed_at = handoff.claimed_at or now
            s.add(handoff)
            self._audit(s, user, "transfer", now, handoff, {"from": previous, "to": target.id})
        self.on_change()

    def resolve(self, handoff_id: int, user: StaffUser) -> None:
        """Closes the case and hands the worker back to the bot, telling them so in their language."""
        now = self.clock()
        with self.db.session() as s:
            handoff, worker = self._case(s, handoff_id)
            if user.role == "counsellor":
                self._require_holder(handoff, user)
            if handoff.status == "resolved":
                return
            handoff.status, handoff.resolved_at, handoff.updated_at = "resolved", now, now
            s.add(handoff)
            text = self.book.t("counsellor_closed_case", worker.language)
            out = Outbound(kind=OutboundKind.TEXT, text=text, language=worker.language)
            s.execute(insert(Message.__table__), [{  # type: ignore[arg-type]
                "worker_id": worker.id, "channel": worker.channel, "direction": "out", "kind": "text",
                "text": text, "payload": {**out.as_json(), "pushed": True}, "question": None, "provider_event_id": None,
                "created_at": now, "delivered_at": None}])
            if self.outbox is not None:
                self.outbox.enqueue(s, worker, [out], now, source="counsellor")
            self._resume_menu(s, worker)
            self._audit(s, user, "resolve", now, handoff)
        self.on_change()

    def audit_log(self, viewer: StaffUser, limit: int = 500) -> list[dict[str, Any]]:
        if viewer.role not in ("supervisor", "admin"):
            raise Forbidden("the audit log is for supervisors and administrators")
        with self.db.session() as s:
            names = self._names(s)
            rows = s.exec(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)).all()  # type: ignore[union-attr]
            self._audit(s, viewer, "read_audit", self.clock())
            return [{"id": r.id, "user": names.get(r.user_id, "?"), "action": r.action, "handoff_id": r.handoff_id,
                     "worker_id": r.worker_id, "detail": r.detail, "at": _iso(r.created_at)} for r in rows]

    def record(self, user: StaffUser, action: str, detail: dict[str, Any]) -> None:
        """An audit entry for something read outside a conversation (a report, an export)."""
        with self.db.session() as s:
            self._audit(s, user, action, self.clock(), detail=detail)

    def changes_since(self, message_id: int, updated_after: datetime | None) -> tuple[int, datetime | None, bool]:
        """For the live stream: the newest message id and case update time, and whether anything changed."""
        with self.db.session() as s:
            newest = s.exec(select(func.max(Message.id))).one() or 0
            updated = s.exec(select(func.max(HandoffRequest.updated_at))).one()
        updated = as_utc(updated) if updated else None
        changed = newest != message_id or (updated is not None and updated != updated_after)
        return newest, updated, changed

    # ----- helpers -------------------------------------------------------------------------------------
    def _case(self, s: Session, handoff_id: int) -> tuple[HandoffRequest, Worker]:
        handoff = s.get(HandoffRequest, handoff_id)
        if handoff is None:
            raise NotFound("no such conversation")
        worker = s.get(Worker, handoff.worker_id)
        assert worker is not None
        return handoff, worker

    @staticmethod
    def _require_holder(handoff: HandoffRequest, user: StaffUser) -> None:
        if handoff.status != "assigned" or handoff.assigned_to != user.id:
            raise Forbidden("claim the conversation first: only the counsellor who holds it may do this")

    def _resume_menu(self, s: Session, worker: Worker) -> None:
        """The bot picks up where the worker was; nothing to do but make sure it is not paused."""
        row = s.get(ConversationStateRow, worker.id)
        if row is not None and row.state.get("paused"):
            row.state, row.version = {**row.state, "paused": False}, row.version + 1  # a step that read it retries
            s.add(row)

    @staticmethod
    def _names(s: Session) -> dict[int, str]:
        return {u.id: u.name for u in s.exec(select(StaffUser))}  # type: ignore[misc]

    @staticmethod
    def _last_messages(s: Session, worker_ids: list[int]) -> dict[int, Message]:
        if not worker_ids:
            return {}
        newest = select(func.max(Message.id)).where(Message.worker_id.in_(worker_ids)).group_by(Message.worker_id)  # type: ignore[attr-defined]
        return {m.worker_id: m for m in s.exec(select(Message).where(Message.id.in_(newest)))}  # type: ignore[union-attr]

    def _summary(self, h: HandoffRequest, w: Worker, names: dict[int, str], last: Message | None) -> dict[str, Any]:
        return {
            "id": h.id, "status": h.status, "priority": h.priority, "reason": h.reason, "language": h.language,
            "channel": h.channel, "worker": {"id": w.id, "language": w.language, "prefecture": w.prefecture,
                                             "residence_status": w.residence_status, "reachable": w.reachable},
            "summary": h.summary, "category": h.category, "subcategory": h.subcategory,
            "assigned_to": names.get(h.assigned_to) if h.assigned_to else None,
            "created_at": _iso(h.created_at), "updated_at": _iso(h.updated_at) if h.updated_at else None,
            "last_message": ({"direction": last.direction, "text": last.text[:140], "at": _iso(last.created_at)}
                             if last else None),
        }

    def _shown(self, m: Message, worker: Worker, viewer: StaffUser) -> dict[str, Any]:
        payload = m.payload or {}
        if payload.get("from_counsellor"):
            original, language = str(payload.get("original", m.text)), str(payload.get("original_language"))
        else:
            original, language = m.text, worker.language
        item = {"id": m.id, "direction": m.direction, "kind": m.kind, "text": original, "language": language,
                "at": _iso(m.created_at), "from_counsellor": bool(payload.get("from_counsellor")),
                "author": payload.get("author")}
        if payload.get("from_counsellor"):
            item["sent_text"], item["sent_translated"] = m.text, bool(payload.get("translated"))
        if language != viewer.language and original:
            shown = self.translator.translate(original, language, viewer.language)
            item["translation"] = {"text": shown.text, "language": viewer.language, "translated": shown.translated}
        return item

    def _audit(self, s: Session, user: StaffUser, action: str, now: datetime,
               handoff: HandoffRequest | None = None, detail: dict[str, Any] | None = None) -> None:
        s.add(AuditEntry(user_id=user.id, action=action, handoff_id=handoff.id if handoff else None,  # type: ignore[arg-type]
                         worker_id=handoff.worker_id if handoff else None, detail=detail or {}, created_at=now))



def _iso(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment else None
