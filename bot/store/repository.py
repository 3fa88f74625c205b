"""Thin repositories: the only code that writes SQL for the conversation service."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Column, Connection, Dialect, Table, bindparam, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from bot.messages import Outbound
from bot.store.models import (
    Answer,
    ConversationStateRow,
    DiagnosisResult,
    DiagnosisSession,
    HandoffRequest,
    Message,
    OutboxMessage,
    Worker,
)


class StoredState(NamedTuple):
    """A worker's conversation state as stored (version 0: not stored yet)."""

    worker_id: int
    state: dict[str, Any]
    version: int


class StaleState(RuntimeError):
    """A conversation state changed under us since it was read: the transaction must not overwrite it."""


# Below this many rows a statement per row is as cheap as a COPY or an UPDATE over arrays.
COPY_FROM_ROWS = 4


def as_bound(dialect: Dialect, columns: list[Column[Any]]) -> list[Callable[[Any], Any] | None]:
    """What a statement would do to each value of these columns first (encryption, JSON, time zones), for
    values handed to the driver directly."""
    return [column.type._cached_bind_processor(dialect) for column in columns]


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Plain rows into ``table``, in order, all with the same keys. PostgreSQL gets them by COPY: an INSERT per
    row cost the server and psycopg a statement each, two thirds of what storing a conversation step costs,
    for the three or four rows every message makes (its log entries and the reply to send)."""
    if not rows:
        return
    connection = session.connection()
    columns = [table.c[name] for name in rows[0]]
    missing_defaults = [c for c in table.c if c.name not in rows[0] and c.default is not None]
    if connection.dialect.name != "postgresql" or len(rows) < COPY_FROM_ROWS or missing_defaults:
        session.execute(insert(table), rows)
        return
    processors = list(zip([c.name for c in columns], as_bound(connection.dialect, columns)))
    write_bound_rows(connection, table, [c.name for c in columns],
                     [[row[name] if process is None else process(row[name]) for name, process in processors]
                      for row in rows])


def write_bound_rows(connection: Connection, table: Table, names: Sequence[str],
                     rows: Iterable[Sequence[Any]]) -> None:
    """Rows of values already converted by their columns' types (``_as_bound``): by COPY on PostgreSQL, by one
    INSERT run for all of them elsewhere."""
    preparer = connection.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(name) for name in names)
    if connection.dialect.name == "postgresql":
        with connection.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            with cursor.copy(f"COPY {preparer.format_table(table)} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in names)
        connection.exec_driver_sql(f"INSERT INTO {preparer.format_table(table)} ({columns}) VALUES ({marks})",
                                   [tuple(row) for row in rows])


def update_rows(session: Session, table: Table, where: Sequence[str], columns: Sequence[str],
                rows: list[tuple[tuple[Any, ...], tuple[Any, ...]]]) -> int | None:
    """``UPDATE table SET columns WHERE where`` once per row of (where values, column values); returns how many
    rows changed (None where the driver cannot say). PostgreSQL gets one statement over arrays of the values:
    an UPDATE per row cost the server and psycopg a statement each, for a state and a worker every message."""
    if not rows:
        return 0
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql" or len(rows) < COPY_FROM_ROWS:
        done = session.execute(
            update(table).where(*(table.c[name] == bindparam(f"w_{name}") for name in where))
            .values({name: bindparam(f"v_{name}", type_=table.c[name].type) for name in columns}),
            [{**{f"w_{n}": v for n, v in zip(where, keys)}, **{f"v_{n}": v for n, v in zip(columns, values)}}
             for keys, values in rows])
        return done.rowcount if dialect.supports_sane_multi_rowcount else None
    quote = dialect.identifier_preparer.quote
    named = [(f"w_{n}", table.c[n]) for n in where] + [(f"v_{n}", table.c[n]) for n in columns]
    arrays: dict[str, list[Any]] = {alias: [] for alias, _ in named}
    processors = list(zip(arrays, as_bound(dialect, [column for _, column in named])))
    for keys, values in rows:
        for (alias, process), value in zip(processors, (*keys, *values)):
            arrays[alias].append(value if process is None else process(value))
    unnest = ", ".join(f"%({alias})s::{column.type.compile(dialect=dialect)}[]" for alias, column in named)
    sql = (f"UPDATE {dialect.identifier_preparer.format_table(table)} AS t SET "
           + ", ".join(f"{quote(n)} = v.{quote('v_' + n)}" for n in columns)
           + f" FROM unnest({unnest}) AS v({', '.join(quote(alias) for alias, _ in named)}) WHERE "
           + " AND ".join(f"t.{quote(n)} = v.{quote('w_' + n)}" for n in where))
    return connection.exec_driver_sql(sql, arrays).rowcount


class ConversationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._postgres = session.get_bind().dialect.name == "postgresql"
        # What this unit of work has already read or written, so that a batch of turns asks the database once
        # (and without flushing everything first) rather than at every answer.
        self._open_sheets: dict[int, DiagnosisSession | None] = {}
        self._answer_ids: dict[tuple[int, str], int] = {}  # (sheet id, question) -> the stored answer's id
        self._answers_known_for: set[int] = set()  # sheets whose answer ids are all in _answer_ids
        self._answer_updates: list[tuple[int, dict[str, Any]]] = []  # (worker id, new values of a stored answer)
        self.new_messages: list[dict[str, Any]] = []
        self._new_answers: dict[tuple[int, str], tuple[DiagnosisSession, dict[str, Any]]] = {}
        self.new_outbox: list[dict[str, Any]] = []
        # Worker columns and conversation states changed by the turns of this unit of work, written as a few
        # executemany statements with the other new rows: the ORM's flush of the same changes took a tenth of a
        # turn's time.
        self._worker_changes: dict[int, dict[str, Any]] = {}
        self._state_writes: dict[int, tuple[StoredState, int, datetime]] = {}  # worker id -> new, version read

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

    def unknown_workers(self, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (channel, user id) have no worker row yet."""
        known: set[tuple[str, str]] = set()
        for channel, user_ids in by_channel(keys).items():
            known.update((channel, user_id) for user_id in self.session.exec(select(Worker.channel_user_id).where(
                Worker.channel == channel, Worker.channel_user_id.in_(user_ids))).all())  # type: ignore[attr-defined]
        return keys - known

    def workers_for_update(self, keys: dict[tuple[str, str], str], now: datetime) -> dict[tuple[str, str], Worker]:
        """The rows of several workers at once ((channel, user id) -> language for a new one), created when
        missing and locked like ``worker_for_update``."""
        found: dict[tuple[str, str], Worker] = {}
        for channel, user_ids in by_channel(keys).items():
            stmt = select(Worker).where(Worker.channel == channel, Worker.channel_user_id.in_(user_ids))  # type: ignore[attr-defined]
            if self._postgres:
                stmt = stmt.order_by(Worker.id).with_for_update()  # a fixed lock order: no deadlock
            for worker in self.session.exec(stmt).all():
                found[(worker.channel, worker.channel_user_id)] = worker
        missing = [key for key in keys if key not in found]
        if missing:
            new = [Worker(channel=c, channel_user_id=u, language=keys[(c, u)], created_at=now, last_active_at=now)
                   for c, u in missing]
            try:
                with self.session.begin_nested():
                    self.session.add_all(new)
                for worker in new:
                    found[(worker.channel, worker.channel_user_id)] = worker
            except IntegrityError:  # another process created one of them a moment ago: one at a time
                for channel, user_id in missing:
                    found[(channel, user_id)] = self.worker_for_update(channel, user_id, keys[(channel, user_id)],
                                                                       now)
        return found

    def find_worker(self, channel: str, channel_user_id: str) -> Worker | None:
        return self.session.exec(
            select(Worker).where(Worker.channel == channel, Worker.channel_user_id == channel_user_id)).first()

    def change_worker(self, worker: Worker, **values: Any) -> None:
        """Sets columns of a worker in this unit of work; they are written by ``write_new_rows``."""
        if not values:
            return
        for column, value in values.items():
            set_committed_value(worker, column, value)
        self._worker_changes.setdefault(worker.id, {}).update(values)  # type: ignore[arg-type]

    def load_states(self, worker_ids: list[int]) -> dict[int, StoredState]:
        if not worker_ids:
            return {}
        rows = self.session.exec(select(
            ConversationStateRow.worker_id, ConversationStateRow.state, ConversationStateRow.version).where(
            ConversationStateRow.worker_id.in_(worker_ids))).all()  # type: ignore[attr-defined]
        return {worker_id: StoredState(worker_id, state, version) for worker_id, state, version in rows}

    def confirmed_languages(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The language each of these (channel, user id) has confirmed, for those who have confirmed one."""
        found: dict[tuple[str, str], str] = {}
        for channel, user_ids in by_channel(keys).items():
            for user_id, state in self.session.exec(
                    select(Worker.channel_user_id, ConversationStateRow.state)
                    .join(ConversationStateRow, ConversationStateRow.worker_id == Worker.id)  # type: ignore[arg-type]
                    .where(Worker.channel == channel, Worker.channel_user_id.in_(user_ids))).all():  # type: ignore[attr-defined]
                if state.get("language_confirmed") and state.get("language"):
                    found[(channel, user_id)] = state["language"]
        return found

    def save_state_row(self, stored: StoredState | None, worker_id: int, state: dict[str, Any],
                       now: datetime) -> StoredState:
        """The worker's new state, written by ``write_new_rows`` only if nobody changed it since it was read
        (otherwise the transaction fails with StaleState and nothing of it is kept)."""
        version_read = stored.version if stored is not None else 0
        if worker_id in self._state_writes:  # a second turn of this worker in this unit of work
            version_read = self._state_writes[worker_id][1]
        new = StoredState(worker_id, state, (stored.version if stored is not None else 0) + 1)
        self._state_writes[worker_id] = (new, version_read, now)
        return new

    # ----- messages ------------------------------------------------------------------------------------
    def already_received(self, channel: str, provider_event_id: str) -> bool:
        return self.session.exec(select(Message.id).where(
            Message.channel == channel, Message.provider_event_id == provider_event_id)).first() is not None

    def received_event_ids(self, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (channel, provider event id) pairs are already stored as messages."""
        seen: set[tuple[str, str]] = set()
        for channel, ids in by_channel(keys).items():
            seen.update((channel, e) for e in self.session.exec(select(Message.provider_event_id).where(
                Message.channel == channel, Message.provider_event_id.in_(ids))).all())  # type: ignore[union-attr]
        return seen

    def add_inbound(self, worker: Worker, kind: str, text: str, payload: dict[str, Any], question: str | None,
                    provider_event_id: str | None, now: datetime) -> None:
        self.new_messages.append(dict(
            worker_id=worker.id, channel=worker.channel, direction="in", kind=kind, text=text, payload=payload,
            question=question, provider_event_id=provider_event_id, created_at=now, delivered_at=None))

    def add_outbound(self, worker: Worker, out: Outbound, now: datetime) -> None:
        self.new_messages.append(dict(
            worker_id=worker.id, channel=worker.channel, direction="out", kind=out.kind.value, text=out.text,
            payload=out.as_json(), question=out.question, provider_event_id=None, created_at=now, delivered_at=None))

    def write_new_rows(self) -> None:
        """Messages and outbox rows are plain inserts, many at a time, in the order they were made (so a
        transcript and a worker's sends keep their order); building ORM objects for them cost more than the
        conversation step itself."""
        if self.new_messages:
            insert_rows(self.session, Message.__table__, self.new_messages)  # type: ignore[arg-type]
            self.new_messages = []
        self._write_states()
        self._write_worker_changes()
        if self._answer_updates:
            table = Answer.__table__
            self.session.execute(
                update(table).where(table.c.id == bindparam("answer_id"))  # type: ignore[attr-defined]
                .values(value=bindparam("new_value", type_=table.c.value.type),  # type: ignore[attr-defined]
                        raw_text=bindparam("new_raw", type_=table.c.raw_text.type),  # type: ignore[attr-defined]
                        answered_at=bindparam("new_at", type_=table.c.answered_at.type)),  # type: ignore[attr-defined]
                [values for _, values in self._answer_updates])
            self._answer_updates = []
        if self._new_answers:
            self.session.flush()  # new sheets get their ids
            self.session.execute(insert(Answer.__table__), [  # type: ignore[arg-type]
                {"session_id": sheet.id, **row} for sheet, row in self._new_answers.values()])
            self._new_answers = {}
        if self.new_outbox:
            insert_rows(self.session, OutboxMessage.__table__, self.new_outbox)  # type: ignore[arg-type]
            self.new_outbox = []

    def _write_states(self) -> None:
        if not self._state_writes:
            return
        table = ConversationStateRow.__table__  # type: ignore[attr-defined]
        inserts = [{"worker_id": new.worker_id, "state": new.state, "version": new.version, "updated_at": now}
                   for new, read, now in self._state_writes.values() if read == 0]
        updates = [((new.worker_id, read), (new.state, new.version, now))
                   for new, read, now in self._state_writes.values() if read != 0]
        self._state_writes = {}
        if inserts:  # a state stored meanwhile by another writer makes this fail on the primary key
            self.session.execute(insert(table), inserts)
        if updates:
            done = update_rows(self.session, table, ("worker_id", "version"), ("state", "version", "updated_at"),
                               updates)
            if done is not None and done != len(updates):
                raise StaleState(f"{len(updates) - done} conversation state(s) changed meanwhile")

    def _write_worker_changes(self) -> None:
        if not self._worker_changes:
            return
        by_columns: dict[tuple[str, ...], list[tuple[tuple[Any, ...], tuple[Any, ...]]]] = {}
        for worker_id, values in self._worker_changes.items():
            columns = tuple(sorted(values))
            by_columns.setdefault(columns, []).append(((worker_id,), tuple(values[c] for c in columns)))
        self._worker_changes = {}
        for columns, rows in by_columns.items():
            update_rows(self.session, Worker.__table__, ("id",), columns, rows)  # type: ignore[arg-type]

    def forget_unwritten(self, worker_id: int) -> None:
        """Drops what this unit of work was about to write for a worker who is being erased."""
        self.new_messages = [m for m in self.new_messages if m["worker_id"] != worker_id]
        self.new_outbox = [o for o in self.new_outbox if o["worker_id"] != worker_id]
        self._new_answers = {k: v for k, v in self._new_answers.items() if v[0].worker_id != worker_id}
        self._open_sheets.pop(worker_id, None)
        self._answer_updates = [u for u in self._answer_updates if u[0] != worker_id]
        self._state_writes.pop(worker_id, None)
        self._worker_changes.pop(worker_id, None)

    def transcript(self, worker_id: int, limit: int = 200, after_id: int | None = None) -> list[Message]:
        query = select(Message).where(Message.worker_id == worker_id)
        if after_id is not None:
            query = query.where(Message.id > after_id)  # type: ignore[operator]
        rows = self.session.exec(query.order_by(Message.id.desc()).limit(limit)).all()  # type: ignore[union-attr]
        return list(reversed(rows))

    # ----- the sheet -----------------------------------------------------------------------------------
    def preload_sheets(self, worker_ids: list[int]) -> None:
        """The open sheets of several workers and the ids of their stored answers, in two queries, for a batch
        of turns (otherwise each answer would ask for its sheet and for an earlier answer one at a time)."""
        wanted = [w for w in worker_ids if w not in self._open_sheets]
        if not wanted:
            return
        with self.session.no_autoflush:
            sheets = self.session.exec(select(DiagnosisSession).where(
                DiagnosisSession.worker_id.in_(wanted),  # type: ignore[attr-defined]
                DiagnosisSession.status == "in_progress").order_by(DiagnosisSession.id)).all()  # type: ignore[arg-type]
            for worker_id in wanted:
                self._open_sheets[worker_id] = None
            for sheet in sheets:  # the latest open one wins, as in open_session
                self._open_sheets[sheet.worker_id] = sheet
        self._load_answer_ids([sheet.id for sheet in self._open_sheets.values()
                                if sheet is not None and sheet.id is not None])

    def _load_answer_ids(self, sheet_ids: list[int]) -> None:
        """The ids of the stored answers of these sheets (those not read yet), in one query."""
        ids = [i for i in sheet_ids if i not in self._answers_known_for]
        if not ids:
            return
        with self.session.no_autoflush:
            for answer_id, sheet_id, question_id in self.session.exec(
                    select(Answer.id, Answer.session_id, Answer.question_id)
                    .where(Answer.session_id.in_(ids))).all():  # type: ignore[attr-defined]
                self._answer_ids[(sheet_id, question_id)] = answer_id  # type: ignore[index]
        self._answers_known_for.update(ids)

    def open_session(self, worker: Worker) -> DiagnosisSession | None:
        if worker.id not in self._open_sheets:
            with self.session.no_autoflush:
                self._open_sheets[worker.id] = self.session.exec(select(DiagnosisSession).where(  # type: ignore[index]
                    DiagnosisSession.worker_id == worker.id, DiagnosisSession.status == "in_progress")
                    .order_by(DiagnosisSession.id.desc())).first()  # type: ignore[union-attr]
        return self._open_sheets[worker.id]  # type: ignore[index]

    def start_session(self, worker: Worker, now: datetime) -> DiagnosisSession:
        current = self.open_session(worker)
        if current:
            return current
        # Not flushed here: its id is known when the batch's rows are written (one flush for all of them).
        sheet = DiagnosisSession(worker_id=worker.id, employer_code=worker.employer_code, started_at=now)
        self.session.add(sheet)
        self._open_sheets[worker.id] = sheet  # type: ignore[index]
        return sheet

    def abandon_session(self, worker: Worker) -> None:
        current = self.open_session(worker)
        if current:
            current.status = "abandoned"
            self.session.add(current)
            self._open_sheets[worker.id] = None  # type: ignore[index]

    def record_answer(self, worker: Worker, question_id: str, value: Any, raw: str, now: datetime) -> None:
        sheet = self.start_session(worker, now)
        fresh_key = (id(sheet), question_id)
        if fresh_key in self._new_answers:  # answered again in this same batch
            self._new_answers[fresh_key][1].update(value=value, raw_text=raw, answered_at=now)
            return
        if sheet.id is not None:
            answer_id = self._stored_answer_id(sheet.id, question_id)
            if answer_id is not None:  # answered before (going back, or the sheet taken up again): overwritten
                self._answer_updates.append((worker.id, {"answer_id": answer_id, "new_value": value,  # type: ignore[arg-type]
                                                         "new_raw": raw, "new_at": now}))
                return
        self._new_answers[fresh_key] = (sheet, {"question_id": question_id, "value": value, "raw_text": raw,
                                                "answered_at": now})

    def _stored_answer_id(self, sheet_id: int, question_id: str) -> int | None:
        self._load_answer_ids([sheet_id])
        return self._answer_ids.get((sheet_id, question_id))

    def complete_session(self, worker: Worker, level: str, indicators: list[str], findings: list[dict[str, Any]],
                         fee_jpy: int | None, now: datetime) -> DiagnosisResult:
        sheet = self.start_session(worker, now)
        sheet.status, sheet.completed_at = "completed", now
        self.session.add(sheet)
        if sheet.id is None:
            self.session.flush()  # the result refers to it
        self._open_sheets[worker.id] = None  # type: ignore[index]
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
    def held_by_counsellor(self, worker_ids: list[int]) -> set[int]:
        """The workers whose conversation a counsellor has claimed and not yet resolved."""
        if not worker_ids:
            return set()
        with self.session.no_autoflush:
            return set(self.session.exec(select(HandoffRequest.worker_id).where(
                HandoffRequest.worker_id.in_(worker_ids), HandoffRequest.status == "assigned")).all())  # type: ignore[attr-defined]

    def touch_handoff(self, worker_id: int, now: datetime) -> None:
        self.session.execute(update(HandoffRequest).where(
            HandoffRequest.worker_id == worker_id, HandoffRequest.status.in_(("waiting", "assigned")))  # type: ignore[attr-defined]
            .values(updated_at=now))

    def request_handoff(self, worker: Worker, priority: str, reason: str, language: str,
                        summary: dict[str, Any], now: datetime) -> HandoffRequest:
        """One open request per worker (waiting or held by a counsellor); a more urgent trigger raises the
        priority of the open one."""
        rank = {"urgent": 3, "critical": 2, "normal": 1}
        waiting = self.session.exec(select(HandoffRequest).where(
            HandoffRequest.worker_id == worker.id,
            HandoffRequest.status.in_(("waiting", "assigned")))).first()  # type: ignore[attr-defined]
        if waiting:
            waiting.updated_at = now
            if rank.get(priority, 0) > rank.get(waiting.priority, 0):
                waiting.priority = priority
            waiting.summary = {**waiting.summary, **summary, "reasons": [*waiting.summary.get("reasons", []), reason]}
            self.session.add(waiting)
            return waiting
        request = HandoffRequest(worker_id=worker.id, priority=priority, reason=reason, language=language,
                                 channel=worker.channel, summary={**summary, "reasons": [reason]}, created_at=now,
                                 updated_at=now)
        self.session.add(request)
        return request

    def handoffs_of(self, worker_id: int) -> list[HandoffRequest]:
        return list(self.session.exec(select(HandoffRequest).where(HandoffRequest.worker_id == worker_id)).all())


def by_channel(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """(channel, id) pairs as one list of ids per channel: one query per channel, not per pair."""
    grouped: dict[str, list[str]] = {}
    for channel, key in keys:
        grouped.setdefault(channel, []).append(key)
    return grouped
