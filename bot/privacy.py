"""Workers' privacy as operations on the database: key rotation, erasure on request, and retention of free text.

The encryption itself is in bot/store/crypto.py (column types); this module is what `mirai keys rotate`,
`mirai privacy purge` and the "delete my data" command of the conversation call.
"""
from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime, timedelta

from typing import Any

from sqlalchemy import Column, Table, case, delete, literal_column, null, text, update
from sqlmodel import Session, SQLModel, select

from bot.flowbook import Promises
from bot.settings import Settings
from bot.store.crypto import EncryptedJSON, EncryptedText
from bot.store.db import Database
from bot.store.models import (
    Answer,
    AuditEntry,
    CaseNote,
    ConversationStateRow,
    DiagnosisResult,
    DiagnosisSession,
    HandoffRequest,
    InboundQueue,
    Message,
    OutboxMessage,
    Worker,
)

ROTATE_BATCH = 500
PURGE_BATCH = 2000
TOMBSTONE_PREFIX = "erased:"
# What a finding of a diagnosis result may keep after erasure: ids from the sheet, nothing the worker wrote.
FINDING_FIELDS = ("id", "indicator", "severity")


class BrokenPromise(RuntimeError):
    """The settings would make the privacy notice untrue: the service does not start on them."""


def keep_promises(settings: Settings, promises: Promises) -> None:
    """Raises BrokenPromise, naming every setting that breaks the privacy notice."""
    if broken := broken_promises(settings, promises):
        raise BrokenPromise("; ".join(broken) + ". Keep the settings within the notice (bot/flows/ui.yaml, "
                            "'promises'), or change the notice in all 9 languages and its promises together.")


def broken_promises(settings: Settings, promises: Promises) -> list[str]:
    """What the settings would make untrue of the privacy notice every worker agreed to, in plain words (empty
    when they keep it). Stricter than promised is fine: erasing sooner, or showing employers bigger groups."""
    broken = []
    if settings.free_text_retention_days > promises.free_text_retention_days:
        broken.append(f"FREE_TEXT_RETENTION_DAYS is {settings.free_text_retention_days}, but the privacy notice tells "
                      f"workers that what they write is erased after {promises.free_text_retention_days} days")
    if settings.report_min_respondents < promises.report_min_respondents:
        broken.append(f"REPORT_MIN_RESPONDENTS is {settings.report_min_respondents}, but the privacy notice tells "
                      f"workers that employers only see totals of {promises.report_min_respondents} or more")
    return broken


def erase_worker(session: Session, worker_id: int, now: datetime) -> None:
    """Erases a worker who asked for it, in the caller's transaction: their messages, answers, conversation
    state, stored webhook events, outbox rows (except the pending last words, source 'erasure'), the notes and
    summaries of their handoffs, the details of audit entries about them, and every identifier on the worker row,
    whose channel user id becomes an irreversible tombstone (unreachable and opted out: nothing is ever sent to
    it). What stays is structured and nameless: sheets and results (level, indicators, employer code, dates) for
    the reports, and handoffs' priority, category and dates. Writing again later makes a new worker."""
    session.flush()  # what this unit of work added for the worker is in the tables the statements below see
    worker = session.get(Worker, worker_id)
    if worker is None or worker.channel_user_id.startswith(TOMBSTONE_PREFIX):
        return
    channel, channel_user_id = worker.channel, worker.channel_user_id
    sheets = select(DiagnosisSession.id).where(DiagnosisSession.worker_id == worker_id)
    handoffs = select(HandoffRequest.id).where(HandoffRequest.worker_id == worker_id)

    session.execute(delete(Answer).where(Answer.session_id.in_(sheets)))  # type: ignore[attr-defined]
    session.execute(delete(Message).where(Message.worker_id == worker_id))  # type: ignore[arg-type]
    session.execute(delete(ConversationStateRow).where(ConversationStateRow.worker_id == worker_id))  # type: ignore[arg-type]
    session.execute(delete(OutboxMessage).where(OutboxMessage.worker_id == worker_id,  # type: ignore[arg-type]
                                                OutboxMessage.source != "erasure"))  # type: ignore[arg-type]
    session.execute(delete(CaseNote).where(CaseNote.handoff_id.in_(handoffs)))  # type: ignore[attr-defined]
    session.execute(update(DiagnosisSession).where(DiagnosisSession.worker_id == worker_id,  # type: ignore[arg-type]
                                                   DiagnosisSession.status == "in_progress")
                    .values(status="abandoned"))
    session.execute(update(HandoffRequest).where(HandoffRequest.worker_id == worker_id,  # type: ignore[arg-type]
                                                 HandoffRequest.status.in_(("waiting", "assigned")))  # type: ignore[attr-defined]
                    .values(status="resolved", resolved_at=now))
    session.execute(update(HandoffRequest).where(HandoffRequest.worker_id == worker_id)  # type: ignore[arg-type]
                    .values(summary={}, updated_at=now))
    session.execute(update(AuditEntry).where(AuditEntry.worker_id == worker_id).values(detail={}))  # type: ignore[arg-type]
    for result in session.exec(select(DiagnosisResult).where(DiagnosisResult.worker_id == worker_id)).all():
        result.findings = [{k: f[k] for k in FINDING_FIELDS if k in f} for f in result.findings]
        session.add(result)
    # Webhook events as received carry the text and the user id. The rows stay (scrubbed) so that a provider
    # redelivering one of them is still recognised as seen; events that arrived after this turn are a new person's.
    tombstone = f"{TOMBSTONE_PREFIX}{secrets.token_hex(16)}"
    session.execute(update(InboundQueue).where(
        InboundQueue.channel == channel, InboundQueue.channel_user_id == channel_user_id,  # type: ignore[arg-type]
        InboundQueue.received_at <= now).values(  # type: ignore[arg-type]
        channel_user_id=tombstone, event={}, reply_token=None, reply_token_expires_at=None, error=None))

    worker.channel_user_id = tombstone
    worker.reachable, worker.opted_out = False, True
    worker.consent, worker.consent_at = None, None
    worker.employer_code = worker.residence_status = worker.prefecture = None
    worker.last_inbound_at = None
    session.add(worker)
    session.flush()


def scrub_erasure_row(row: OutboxMessage) -> None:
    """The last words to an erased worker, once they have an outcome: no recipient, no text."""
    row.recipient = TOMBSTONE_PREFIX
    row.payload = {}
    row.reply_token, row.reply_token_expires_at = None, None


def encrypted_columns() -> list[tuple[Table, Column, Column]]:
    """(table, primary key, column) of every encrypted column the models declare."""
    import bot.store.models  # noqa: F401 (registers the tables)

    found = []
    for table in SQLModel.metadata.sorted_tables:
        (pk,) = table.primary_key.columns  # every table with encrypted columns has a one-column key
        for column in table.columns:
            if isinstance(column.type, (EncryptedText, EncryptedJSON)):
                found.append((table, pk, column))
    return found


def rotate_keys(db: Database, batch: int = ROTATE_BATCH) -> dict[str, int]:
    """Re-encrypts every stored value that is not yet encrypted with the first key of ENCRYPTION_KEYS, a batch of
    rows per transaction (the service keeps running meanwhile). Values already on the first key are left alone,
    so running it again changes nothing. Returns how many values of each table.column were re-encrypted."""
    keyring = db.keyring
    counts: dict[str, int] = {}
    for table, pk, column in encrypted_columns():
        name = f"{table.name}.{column.name}"
        counts[name] = 0
        last = None
        while True:
            # Raw SQL: the stored tokens as they are, not decrypted by the column type.
            query = f"SELECT {pk.name}, {column.name} FROM {table.name} WHERE {column.name} IS NOT NULL"
            params: dict[str, object] = {"n": batch}
            if last is not None:
                query += f" AND {pk.name} > :last"
                params["last"] = last
            with db.transaction() as conn:
                rows = conn.execute(text(query + f" ORDER BY {pk.name} LIMIT :n"), params).all()
                stale = [{"k": key, "o": value, "v": keyring.reencrypt(str(value))} for key, value in rows
                         if not keyring.is_current(str(value))]
                if stale:
                    # Only where the value is still the one read: a row the service rewrote meanwhile (with the
                    # first key already) keeps its new value.
                    conn.execute(text(f"UPDATE {table.name} SET {column.name} = :v "
                                      f"WHERE {pk.name} = :k AND {column.name} = :o"), stale)
            counts[name] += len(stale)
            if len(rows) < batch:
                break
            last = rows[-1][0]
    return counts


def purge_expired_free_text(db: Database, now: datetime, retention_days: int | None = None) -> dict[str, int]:
    """Erases free text older than the retention period (FREE_TEXT_RETENTION_DAYS): message bodies, typed answers
    (and the value of free-text questions), stored webhook events, payloads of outbox rows that have an outcome,
    counsellors' notes and the raw answers kept in long-idle conversation states. Structure stays: who wrote when,
    kinds, questions, levels, indicators. Erased values are stored as the plain empty marker ('' or '{}'), so a
    second run finds nothing to do and no row is decrypted. Returns how many rows of each kind were erased."""
    from bot.flowbook import default_flowbook

    if retention_days is None:
        from bot.settings import get_settings

        retention_days = get_settings().free_text_retention_days
    cutoff = now - timedelta(days=retention_days)
    free_text_questions = [q.id for q in default_flowbook().questions if q.type == "free_text"]
    empty, no_json = literal_column("''"), literal_column("'{}'")
    m, a, q, o, n = (Message.__table__.c, Answer.__table__.c, InboundQueue.__table__.c,  # type: ignore[attr-defined]
                     OutboxMessage.__table__.c, CaseNote.__table__.c)  # type: ignore[attr-defined]
    counts = {
        "message": _purge(db, Message, {"text": empty, "payload": no_json}, m.created_at < cutoff, m.text != empty),
        "answer": _purge(db, Answer, {"raw_text": empty,
                                      "value": case((a.question_id.in_(free_text_questions), null()), else_=a.value)},
                         a.answered_at < cutoff, a.raw_text != empty),
        "inbound_queue": _purge(db, InboundQueue, {"event": no_json}, q.received_at < cutoff, q.status != "pending",
                                q.event != no_json),
        "outbox": _purge(db, OutboxMessage, {"payload": no_json}, o.created_at < cutoff, o.status != "pending",
                         o.payload != no_json),
        "case_note": _purge(db, CaseNote, {"text": empty}, n.created_at < cutoff, n.text != empty),
    }
    counts["conversation_state"] = _purge_idle_states(db, cutoff, free_text_questions)
    return counts


def _purge(db: Database, model: type[SQLModel], markers: dict[str, Any], *conditions: Any) -> int:
    """One UPDATE per batch of rows, by id, so that the service's writers wait for a moment at most. The markers
    are SQL literals on purpose: they are stored as they are, and the column types read a value that is not a
    token as it is."""
    table = model.__table__  # type: ignore[attr-defined]
    done = 0
    while True:
        with db.transaction() as conn:
            ids = list(conn.execute(select(table.c.id).where(*conditions).order_by(table.c.id)
                                    .limit(PURGE_BATCH)).scalars())
            if ids:
                conn.execute(update(table).where(table.c.id.in_(ids)).values(markers))
        done += len(ids)
        if len(ids) < PURGE_BATCH:
            return done


def _purge_idle_states(db: Database, cutoff: datetime, free_text_questions: list[str]) -> int:
    """Conversations idle since before the cutoff keep where they were, without the worker's typed words."""
    done = 0
    with db.session() as s:
        for row in s.exec(select(ConversationStateRow).where(ConversationStateRow.updated_at < cutoff)).all():
            state = dict(row.state)
            answers = dict(state.get("answers") or {})
            if not state.get("raw_answers") and not any(q in answers for q in free_text_questions):
                continue
            for qid in free_text_questions:
                answers.pop(qid, None)
            row.state = {**state, "raw_answers": {}, "answers": answers}
            row.version += 1  # a step that read the state before this is retried, not allowed to put the words back
            s.add(row)
            done += 1
    return done


# ----- logs ---------------------------------------------------------------------------------------------------
# Our own log lines name rows by id, never by what a worker wrote or who they are. Two libraries would: httpx logs
# every request URL (LINE's and Messenger's profile lookups carry the user id in the path, Telegram's the bot
# token), uvicorn's access log prints query strings (the web chat's history carries the browser's user id), and
# python-telegram-bot logs every API call with its parameters (chat id and text) at DEBUG.
_IDENTIFIER_SEGMENT = re.compile(r"[^/?#]*\d[^/?#]{7,}")


class _RedactHttpxUrls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 2:
            args = list(record.args)
            args[1] = redact_url(str(args[1]))
            record.args = tuple(args)
        return True


class _DropQueryStrings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            args[2] = str(args[2]).split("?", 1)[0]
            record.args = tuple(args)
        return True


def redact_url(url: str) -> str:
    """The URL without query and without path segments that look like ids or tokens (8+ characters with a
    digit): https://api.line.me/v2/bot/profile/U4af4980629 -> https://api.line.me/v2/bot/profile/*"""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    path = _IDENTIFIER_SEGMENT.sub("*", path.split("?", 1)[0])
    return f"{scheme}{sep}{host}{slash}{path}"


def install_log_redaction() -> None:
    """Idempotent: called wherever the app or the pipeline starts."""
    logging.getLogger("telegram").setLevel(logging.INFO)  # its DEBUG lines are the messages themselves
    for name, kind in (("httpx", _RedactHttpxUrls), ("uvicorn.access", _DropQueryStrings)):
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())
