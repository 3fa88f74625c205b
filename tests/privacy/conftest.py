"""A worker talking to the real conversation service (storage included), and ways to look at the database the
way someone with a copy of it would: raw file bytes and every row of every table."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlmodel import SQLModel

from bot.flowbook import FlowBook
from bot.messages import InboundEvent, InboundKind, Outbound
from bot.service import ConversationService
from bot.store.db import Database

KEY_A = "n0UJ9l3a0bXxV3QGqvNDi3ELwJ5v2tTTR7RUQ0Cw4xk="
KEY_B = "0M8dTE8Kx3m5Zt-2m0mL4o1n2b3v4c5x6z7a8s9d0f4="


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class ServiceWorker:
    """One worker writing to the service of an embedded channel (the web chat), as the web chat would."""

    def __init__(self, service: ConversationService, user_id: str, channel: str = "web") -> None:
        self.service, self.user_id, self.channel = service, user_id, channel
        self.last: list[Outbound] = []

    def _send(self, event: InboundEvent) -> list[Outbound]:
        self.last = self.service.handle(self.channel, self.user_id, event)
        return self.last

    def follow(self, lang: str) -> list[Outbound]:
        return self._send(InboundEvent(kind=InboundKind.FOLLOW, language_hint=lang, language_chosen=True))

    def say(self, words: str) -> list[Outbound]:
        return self._send(InboundEvent(kind=InboundKind.TEXT, text=words))

    def press(self, *option_ids: str) -> list[Outbound]:
        return self._send(InboundEvent(kind=InboundKind.CHOICE, choice_ids=list(option_ids)))

    @property
    def question(self) -> str | None:
        asked = [o.question for o in self.last if o.question]
        return asked[-1] if asked else None

    def sheet_with_free_text(self, book: FlowBook, free_text: str, talk_to_counsellor: bool = False) -> None:
        """Consents, skips the optional questions and answers the sheet safely, typing ``free_text`` where the
        sheet asks for the worker's own words."""
        assert self.question == "consent", self.question
        self.press("agree")
        for _ in ("employer_code", "residence_status", "prefecture"):
            self.press("skip")
        for q in book.questions:
            assert self.question == q.id, (self.question, q.id)
            if q.type == "checklist":
                self.press("none")
            elif q.type == "amount":
                self.say("0")
            elif q.type == "free_text":
                self.say(free_text)
            elif q.id == "Q13":
                self.press("yes" if talk_to_counsellor else "no")
            else:
                self.press("no" if q.risk_answer == "yes" else "yes")


def raw_database_bytes(db: Database) -> bytes:
    """The SQLite file as a thief would copy it, with its write-ahead log, after a checkpoint has moved the log's
    pages into the file and emptied the log (as SQLite does by itself as the log grows)."""
    import sqlite3
    import time

    path = Path(db.url.split("///", 1)[-1])
    db.engine.dispose()
    with sqlite3.connect(path, timeout=30) as plain:
        for _ in range(200):  # a background poller may be reading for a moment
            busy = plain.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the write-ahead log could not be checkpointed")
    found = b""
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-journal")):
        if candidate.exists():
            found += candidate.read_bytes()
    return found


def every_stored_value(db: Database) -> list[str]:
    """Every value of every row of every table, as text, encrypted columns decrypted (read through the models'
    column types), plus the raw stored form of each value (read with plain SQL)."""
    import bot.store.models  # noqa: F401

    values: list[str] = []
    with db.session() as s:
        for table in SQLModel.metadata.sorted_tables:
            for row in s.execute(table.select()).all():
                values.extend(_as_text(v) for v in row)
            for row in s.execute(text(f"SELECT * FROM {table.name}")).all():
                values.extend(_as_text(v) for v in row)
    return values


def _as_text(value: Any) -> str:
    import json

    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
