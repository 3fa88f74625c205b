"""The tables. Message bodies and answers are what workers told us in confidence: nothing here is logged, and
every column that can carry their words is encrypted at rest (``EncryptedText``/``EncryptedJSON``, see
bot/store/crypto.py). Identifiers used to find rows (channel user ids) stay plain: erasure replaces them."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.store.crypto import EncryptedJSON, EncryptedText


class Worker(SQLModel, table=True):
    __tablename__ = "worker"
    __table_args__ = (UniqueConstraint("channel", "channel_user_id", name="uq_worker_channel_user"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32, index=True)
    channel_user_id: str = Field(max_length=128)
    language: str = Field(default="en", max_length=8)
    consent: bool | None = None
    consent_at: datetime | None = None
    employer_code: str | None = Field(default=None, max_length=32, index=True)
    residence_status: str | None = Field(default=None, max_length=64)
    prefecture: str | None = Field(default=None, max_length=8)
    reachable: bool = True
    opted_out: bool = False
    created_at: datetime
    last_active_at: datetime
    last_inbound_at: datetime | None = None  # Messenger lets us write freely only 24 h after this


class ConversationStateRow(SQLModel, table=True):
    __tablename__ = "conversation_state"

    worker_id: int = Field(foreign_key="worker.id", primary_key=True)
    state: dict[str, Any] = Field(sa_column=Column(EncryptedJSON, nullable=False))  # holds raw answers
    version: int = 0  # bumped on every save: a stale writer is detected instead of silently overwriting
    updated_at: datetime


class Message(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (UniqueConstraint("channel", "provider_event_id", name="uq_message_provider_event"),)

    id: int | None = Field(default=None, primary_key=True)
    worker_id: int = Field(foreign_key="worker.id", index=True)
    channel: str = Field(max_length=32)
    direction: str = Field(max_length=3)  # "in" or "out"
    kind: str = Field(max_length=16)
    text: str = Field(default="", sa_column=Column(EncryptedText, nullable=False, default=""))
    # The inbound event (with its text) or the outbound message as shown: as private as the text.
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(EncryptedJSON, nullable=False))
    question: str | None = Field(default=None, max_length=32)
    provider_event_id: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(index=True)
    delivered_at: datetime | None = None


class DiagnosisSession(SQLModel, table=True):
    __tablename__ = "diagnosis_session"

    id: int | None = Field(default=None, primary_key=True)
    worker_id: int = Field(foreign_key="worker.id", index=True)
    status: str = Field(default="in_progress", max_length=16)  # in_progress, completed, abandoned
    employer_code: str | None = Field(default=None, max_length=32, index=True)
    started_at: datetime
    completed_at: datetime | None = None


class Answer(SQLModel, table=True):
    __tablename__ = "answer"
    __table_args__ = (UniqueConstraint("session_id", "question_id", name="uq_answer_session_question"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="diagnosis_session.id", index=True)
    question_id: str = Field(max_length=8)
    value: Any = Field(sa_column=Column(EncryptedJSON, nullable=True))  # a free-text answer is the text itself
    raw_text: str = Field(default="", sa_column=Column(EncryptedText, nullable=False, default=""))
    answered_at: datetime


class DiagnosisResult(SQLModel, table=True):
    __tablename__ = "diagnosis_result"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="diagnosis_session.id", unique=True)
    worker_id: int = Field(foreign_key="worker.id", index=True)
    employer_code: str | None = Field(default=None, max_length=32, index=True)
    level: str = Field(max_length=16)
    indicators: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    findings: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    fee_jpy: int | None = None
    created_at: datetime = Field(index=True)


class HandoffRequest(SQLModel, table=True):
    __tablename__ = "handoff_request"

    id: int | None = Field(default=None, primary_key=True)
    worker_id: int = Field(foreign_key="worker.id", index=True)
    priority: str = Field(max_length=16)  # urgent, critical, normal
    reason: str = Field(max_length=32)
    status: str = Field(default="waiting", max_length=16)
    language: str = Field(max_length=8)
    channel: str = Field(max_length=32)
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(index=True)
    # The counsellor side: who holds the conversation, how it was classified, when it ended.
    assigned_to: int | None = Field(default=None, foreign_key="staff_user.id", index=True)
    claimed_at: datetime | None = None
    category: str | None = Field(default=None, max_length=64)
    subcategory: str | None = Field(default=None, max_length=64)
    resolved_at: datetime | None = None
    updated_at: datetime | None = Field(default=None, index=True)
    # A week after the case is resolved the worker is asked whether things got better.
    followup_answer: str | None = Field(default=None, max_length=16)  # better, same, worse
    followup_at: datetime | None = None


class InboundQueue(SQLModel, table=True):
    """Webhook events as received, stored before the provider gets its 200, stepped afterwards in order."""

    __tablename__ = "inbound_queue"
    __table_args__ = (UniqueConstraint("channel", "provider_event_id", name="uq_inbound_provider_event"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    channel_user_id: str = Field(max_length=128, index=True)
    provider_event_id: str = Field(max_length=128)
    event: dict[str, Any] = Field(sa_column=Column(EncryptedJSON, nullable=False))  # an InboundEvent, or local calls
    reply_token: str | None = Field(default=None, max_length=256)
    reply_token_expires_at: datetime | None = None
    status: str = Field(default="pending", max_length=16, index=True)  # pending, done, failed
    error: str | None = Field(default=None, max_length=500)
    received_at: datetime
    processed_at: datetime | None = None


class OutboxMessage(SQLModel, table=True):
    """One call to a provider's send API. Written in the same transaction as the step that produced it;
    sent by the dispatcher with an idempotency key, retried until sent or given up with a reason."""

    __tablename__ = "outbox"
    # The conversation dispatcher reads pending rows without a campaign in id order, past any broadcast backlog.
    __table_args__ = (Index("ix_outbox_queue", "status", "campaign_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    worker_id: int = Field(foreign_key="worker.id", index=True)
    channel: str = Field(max_length=32)
    recipient: str = Field(max_length=128)
    payload: dict[str, Any] = Field(sa_column=Column(EncryptedJSON, nullable=False))  # bot and counsellor texts
    # bot, counsellor, campaign, nudge, channel, erasure (the last word to a worker who asked to be forgotten:
    # its recipient and payload are scrubbed as soon as it has an outcome)
    source: str = Field(default="bot", max_length=16)
    # A campaign's rows are sent by the broadcast path; rows with the same batch key carry the same content
    # and go out in one multicast call (LINE), whose retry key is derived from the batch key.
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id", index=True)
    batch_key: str | None = Field(default=None, max_length=64, index=True)
    idempotency_key: str = Field(max_length=64, unique=True)
    reply_token: str | None = Field(default=None, max_length=256)
    reply_token_expires_at: datetime | None = None
    status: str = Field(default="pending", max_length=16, index=True)  # pending, sent, failed, skipped
    attempts: int = 0
    next_attempt_at: datetime = Field(index=True)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime
    sent_at: datetime | None = None


class StaffUser(SQLModel, table=True):
    """A counsellor, supervisor or administrator of the inbox, or an employer reading its own report.
    Workers are never users."""

    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=16)  # counsellor, supervisor, admin, employer
    password_hash: str = Field(max_length=255)
    language: str = Field(default="ja", max_length=8)  # the language transcripts are translated into
    active: bool = True
    created_at: datetime
    # Only for the employer role: the one employer code whose report this account may read.
    employer_code: str | None = Field(default=None, max_length=32)


class StaffToken(SQLModel, table=True):
    """A bearer token, stored only as its SHA-256 so that a copy of the database logs nobody in."""

    __tablename__ = "staff_token"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="staff_user.id", index=True)
    created_at: datetime
    expires_at: datetime = Field(index=True)


class CaseNote(SQLModel, table=True):
    """An internal note on a conversation: never shown to the worker."""

    __tablename__ = "case_note"

    id: int | None = Field(default=None, primary_key=True)
    handoff_id: int = Field(foreign_key="handoff_request.id", index=True)
    author_id: int = Field(foreign_key="staff_user.id")
    text: str = Field(sa_column=Column(EncryptedText, nullable=False))
    created_at: datetime


class AuditEntry(SQLModel, table=True):
    """Who read, answered, moved or exported which conversation, and when."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="staff_user.id", index=True)
    action: str = Field(max_length=32)  # login, read_transcript, reply, claim, transfer, resolve, note, export
    handoff_id: int | None = Field(default=None, index=True)
    worker_id: int | None = None
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(index=True)


class Campaign(SQLModel, table=True):
    """A broadcast: one text in every language, sent at a time to the workers an audience filter selects."""

    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    texts: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))  # language -> text
    audience: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    send_at: datetime = Field(index=True)
    status: str = Field(default="scheduled", max_length=16, index=True)  # scheduled, sending, done, cancelled
    created_by: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime
    enqueued_at: datetime | None = None
    finished_at: datetime | None = None
    cancelled_at: datetime | None = None
    recipients: int = 0  # outbox rows written for it
    # Workers the filter matched but whom we may not write to, by reason (opted out, unreachable, no consent).
    excluded: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class NudgeLog(SQLModel, table=True):
    """Each check-in nudge once: the unique key makes a second scheduler (or a second run) a no-op."""

    __tablename__ = "nudge_log"
    __table_args__ = (UniqueConstraint("worker_id", "kind", "ref", name="uq_nudge_once"),)

    id: int | None = Field(default=None, primary_key=True)
    worker_id: int = Field(foreign_key="worker.id", index=True)
    kind: str = Field(max_length=16)  # reinvite, reminder, followup
    ref: str = Field(max_length=64)  # what it is about: a period, a sheet and its count, a case
    outcome: str = Field(default="sent", max_length=64)  # sent, or why not (e.g. Messenger's 24-hour window)
    created_at: datetime
