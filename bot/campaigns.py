"""Campaign broadcasts: a text in the 9 languages, an audience filter and a send time. At the send time the
audience is turned into outbox rows in one transaction (all or nothing; a second scheduler finds the campaign
already started), which the broadcast sender then delivers (bot/broadcast.py)."""
from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, insert, select, update

from bot.flowbook import LANGUAGES, FlowBook, default_flowbook
from bot.messages import Outbound, OutboundKind
from bot.outbox import Outbox
from bot.sendrules import QuietHours
from bot.settings import Settings
from bot.store.db import Database, as_utc
from bot.store.models import Campaign, OutboxMessage, Worker
from bot.store.repository import as_bound, write_bound_rows

Clock = Callable[[], datetime]
outbox_table = OutboxMessage.__table__
worker_table = Worker.__table__
campaign_table = Campaign.__table__


class CampaignError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


class Audience(BaseModel):
    """Who gets it. Every list narrows (empty = everyone); all filters apply together."""

    model_config = ConfigDict(extra="forbid")

    channels: list[str] = Field(default_factory=list, max_length=10)
    languages: list[str] = Field(default_factory=list, max_length=9)
    prefectures: list[str] = Field(default_factory=list, max_length=47)
    residence_statuses: list[str] = Field(default_factory=list, max_length=50)
    employer_codes: list[str] = Field(default_factory=list, max_length=1000)
    active_within_days: int | None = Field(default=None, ge=1, le=3650,
                                           description="only who wrote to the bot in the last N days")

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(LANGUAGES))
        if unknown:
            raise ValueError(f"unknown languages {unknown}; known: {list(LANGUAGES)}")
        return v


class CampaignService:
    def __init__(self, db: Database, outbox: Outbox, settings: Settings, clock: Clock,
                 book: FlowBook | None = None) -> None:
        self.db = db
        self.outbox = outbox
        self.settings = settings
        self.clock = clock
        self.book = book or default_flowbook()
        self.quiet = QuietHours.parse(settings.quiet_hours, settings.timezone)

    # ----- the audience --------------------------------------------------------------------------------
    def validate_audience(self, audience: Audience) -> None:
        known = {"prefectures": {p.id for p in self.book.prefectures},
                 "residence_statuses": {r.id for r in self.book.residence_statuses}}
        for field, ids in known.items():
            unknown = sorted(set(getattr(audience, field)) - ids)
            if unknown:
                raise CampaignError(400, f"unknown {field.replace('_', ' ')}: {unknown}")

    def _selection(self, audience: Audience, now: datetime) -> Any:
        w = worker_table
        query = select(w.c.id, w.c.channel, w.c.channel_user_id, w.c.language, w.c.consent, w.c.opted_out,
                       w.c.reachable, w.c.last_inbound_at)
        if audience.channels:
            query = query.where(w.c.channel.in_(audience.channels))
        if audience.languages:
            query = query.where(w.c.language.in_(audience.languages))
        if audience.prefectures:
            query = query.where(w.c.prefecture.in_(audience.prefectures))
        if audience.residence_statuses:
            query = query.where(w.c.residence_status.in_(audience.residence_statuses))
        if audience.employer_codes:
            query = query.where(w.c.employer_code.in_(audience.employer_codes))
        if audience.active_within_days:
            query = query.where(w.c.last_active_at >= now - timedelta(days=audience.active_within_days))
        return query.order_by(w.c.id)

    def _why_not(self, row: Any, now: datetime) -> str | None:
        """Why this person matched the filter but must not be written to."""
        if row.opted_out:
            return "opted out"
        if not row.reachable:
            return "unreachable"
        if not row.consent:
            return "no consent"
        channel = self.outbox.channels.get(row.channel)
        if channel is None:
            return "no messaging channel"  # the web chat, or a channel that is not configured
        last = row.last_inbound_at
        return channel.may_write_first(as_utc(last) if last else None, now)

    def count(self, audience: Audience, now: datetime | None = None) -> dict[str, Any]:
        """The dry run: how many would get it, by channel and language, and who is left out and why."""
        now = now or self.clock()
        self.validate_audience(audience)
        with self.db.session() as s:
            rows = s.execute(self._selection(audience, now)).all()
        excluded: Counter[str] = Counter()
        by_channel: Counter[str] = Counter()
        by_language: Counter[str] = Counter()
        for row in rows:
            reason = self._why_not(row, now)
            if reason:
                excluded[reason] += 1
            else:
                by_channel[row.channel] += 1
                by_language[row.language] += 1
        return {"recipients": sum(by_channel.values()), "matched": len(rows), "excluded": dict(excluded),
                "by_channel": dict(by_channel), "by_language": dict(by_language)}

    # ----- life of a campaign --------------------------------------------------------------------------
    def create(self, name: str, texts: dict[str, str], audience: Audience, send_at: datetime | None,
               created_by: int | None) -> Campaign:
        missing = [lang for lang in LANGUAGES if not (texts.get(lang) or "").strip()]
        if missing:
            raise CampaignError(400, f"the text is missing in {missing}: a campaign speaks all 9 languages")
        extra = sorted(set(texts) - set(LANGUAGES))
        if extra:
            raise CampaignError(400, f"unknown languages {extra}")
        self.validate_audience(audience)
        now = self.clock()
        send_at = as_utc(send_at) if send_at else now
        campaign = Campaign(name=name, texts={k: texts[k].strip() for k in LANGUAGES},
                            audience=audience.model_dump(), send_at=send_at, status="scheduled",
                            created_by=created_by, created_at=now, excluded={})
        with self.db.session() as s:
            s.add(campaign)
            s.commit()
            s.refresh(campaign)
        return campaign

    def start_due(self, now: datetime | None = None) -> list[int]:
        """Enqueues every campaign whose time has come; returns their ids."""
        now = now or self.clock()
        with self.db.session() as s:
            due = list(s.execute(select(campaign_table.c.id).where(
                campaign_table.c.status == "scheduled", campaign_table.c.send_at <= now)
                .order_by(campaign_table.c.id)).scalars())
        return [cid for cid in due if self.enqueue(cid, now) is not None]

    def enqueue(self, campaign_id: int, now: datetime | None = None) -> int | None:
        """Writes the campaign's outbox rows; None when it is not due or another process started it."""
        now = now or self.clock()
        with self.db.session() as s:
            started = s.execute(update(campaign_table).where(
                campaign_table.c.id == campaign_id, campaign_table.c.status == "scheduled",
                campaign_table.c.send_at <= now).values(status="sending", enqueued_at=now))
            if started.rowcount != 1:
                s.rollback()
                return None
            campaign = s.get(Campaign, campaign_id)
            assert campaign is not None
            audience = Audience.model_validate(campaign.audience)
            excluded: Counter[str] = Counter()
            by_group: dict[tuple[str, str], list[Any]] = {}
            for row in s.execute(self._selection(audience, now)).all():
                reason = self._why_not(row, now)
                if reason:
                    excluded[reason] += 1
                else:
                    language = row.language if row.language in campaign.texts else "en"
                    by_group.setdefault((row.channel, language), []).append(row)
            rows = self._outbox_rows(campaign, by_group, now)
            _bulk_insert(s, rows)
            s.execute(update(campaign_table).where(campaign_table.c.id == campaign_id).values(
                recipients=sum(len(v) for v in by_group.values()), excluded=dict(excluded),
                **({} if rows else {"status": "done", "finished_at": now})))
            s.commit()
        return len(rows)

    def _outbox_rows(self, campaign: Campaign, by_group: dict[tuple[str, str], list[Any]],
                     now: datetime) -> list[dict[str, Any]]:
        """One row per person and provider call. Rows for a multicast channel are cut into batches of the
        same content now, once, so that a batch is the same set of people however often it is sent."""
        not_before = self.quiet.next_allowed(now)
        run = uuid.uuid4().hex[:8]
        rows: list[dict[str, Any]] = []
        for (channel_name, language), people in sorted(by_group.items()):
            channel = self.outbox.channels[channel_name]
            calls = channel.render([Outbound(kind=OutboundKind.TEXT, text=campaign.texts[language],
                                             language=language)])
            size = channel.max_multicast
            for n, person in enumerate(people):
                for i, call in enumerate(calls):
                    batch = f"c{campaign.id}.{run}.{channel_name}.{language}.{n // size}.{i}" if size else None
                    rows.append(dict(
                        worker_id=person.id, channel=channel_name, recipient=person.channel_user_id,
                        payload=call, source="campaign", idempotency_key=f"c{campaign.id}.{person.id}.{i}",
                        status="pending", attempts=0, next_attempt_at=not_before, created_at=now,
                        last_error=None, sent_at=None, reply_token=None, reply_token_expires_at=None,
                        campaign_id=campaign.id, batch_key=batch))
        return rows

    def cancel(self, campaign_id: int) -> dict[str, Any]:
        now = self.clock()
        with self.db.session() as s:
            campaign = s.get(Campaign, campaign_id)
            if campaign is None:
                raise CampaignError(404, "no such campaign")
            if campaign.status in ("done", "cancelled"):
                raise CampaignError(409, f"the campaign is already {campaign.status}")
            campaign.status, campaign.cancelled_at = "cancelled", now
            s.add(campaign)
            s.execute(update(outbox_table).where(outbox_table.c.campaign_id == campaign_id,
                                                 outbox_table.c.status == "pending")
                      .values(status="skipped", last_error="campaign cancelled"))
            s.commit()
        return self.progress(campaign_id)

    # ----- reading -------------------------------------------------------------------------------------
    def progress(self, campaign_id: int) -> dict[str, Any]:
        with self.db.session() as s:
            campaign = s.get(Campaign, campaign_id)
            if campaign is None:
                raise CampaignError(404, "no such campaign")
            counts = s.execute(select(outbox_table.c.status, outbox_table.c.last_error, func.count())
                               .where(outbox_table.c.campaign_id == campaign_id)
                               .group_by(outbox_table.c.status, outbox_table.c.last_error)).all()
        return _progress(campaign, counts)

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        with self.db.session() as s:
            ids = list(s.execute(select(campaign_table.c.id).order_by(campaign_table.c.id.desc())
                                 .limit(limit)).scalars())
        return [self.progress(i) for i in ids]


OUTBOX_COLUMNS = ("worker_id", "channel", "recipient", "payload", "source", "idempotency_key", "status", "attempts",
                  "next_attempt_at", "created_at", "campaign_id", "batch_key")


def _bulk_insert(session: Any, rows: list[dict[str, Any]]) -> None:
    """A campaign's rows in one go. Most values are the same in every row (and a payload the same for a whole
    group), so each is converted for the database once, not 100,000 times; PostgreSQL takes them by COPY."""
    if not rows:
        return
    connection = session.connection()
    processors = dict(zip(OUTBOX_COLUMNS, as_bound(connection.dialect, [outbox_table.c[c] for c in OUTBOX_COLUMNS])))
    converted: dict[tuple[str, int], Any] = {}

    def value(column: str, v: Any) -> Any:
        processor = processors[column]
        if processor is None or v is None:
            return v
        if column in ("payload", "next_attempt_at", "created_at", "source", "status"):
            key = (column, id(v))
            if key not in converted:
                converted[key] = processor(v)
            return converted[key]
        return processor(v)

    write_bound_rows(connection, outbox_table, OUTBOX_COLUMNS,
                     [tuple(value(c, row[c]) for c in OUTBOX_COLUMNS) for row in rows])


def _progress(campaign: Campaign, counts: list[Any]) -> dict[str, Any]:
    queued = sent = 0
    failed: Counter[str] = Counter()
    skipped: Counter[str] = Counter(campaign.excluded or {})
    for status, reason, n in counts:
        if status in ("pending", "sending"):
            queued += n
        elif status == "sent":
            sent += n
        elif status == "failed":
            failed[reason or "failed"] += n
        elif status == "skipped":
            skipped[reason or "skipped"] += n
    total = queued + sent + sum(failed.values()) + sum(skipped.values())
    return {"id": campaign.id, "name": campaign.name, "status": campaign.status,
            "send_at": as_utc(campaign.send_at).isoformat(), "audience": campaign.audience,
            "recipients": campaign.recipients, "total": total, "queued": queued, "sent": sent,
            "failed": sum(failed.values()), "skipped": sum(skipped.values()),
            "failed_reasons": dict(failed), "skipped_reasons": dict(skipped),
            "enqueued_at": as_utc(campaign.enqueued_at).isoformat() if campaign.enqueued_at else None,
            "finished_at": as_utc(campaign.finished_at).isoformat() if campaign.finished_at else None}
