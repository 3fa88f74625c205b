"""Nothing a worker tells the bot is lost: every message, answer, result and request for help is stored, on
SQLite and on PostgreSQL alike, and a new process picks the conversation up where it was."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.messages import InboundEvent, InboundKind
from bot.service import ConversationService
from bot.store.models import (
    Answer,
    ConversationStateRow,
    DiagnosisResult,
    DiagnosisSession,
    HandoffRequest,
    Message,
    Worker,
)
from bot.store.repository import ConversationRepository, StaleState


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def text(service: ConversationService, user: str, body: str) -> list:
    return service.handle("web", user, InboundEvent(kind=InboundKind.TEXT, text=body))


def press(service: ConversationService, user: str, *ids: str) -> list:
    return service.handle("web", user, InboundEvent(kind=InboundKind.CHOICE, choice_ids=list(ids)))


def open_chat(service: ConversationService, user: str, lang: str = "en") -> None:
    service.handle("web", user, InboundEvent(kind=InboundKind.FOLLOW, language_hint=lang, language_chosen=True))
    press(service, user, "agree")
    text(service, user, "ACME-01")
    press(service, user, "technical_intern_2")
    text(service, user, "Aichi")


def test_a_completed_sheet_is_stored_with_its_answers_and_result(database, book):
    service = ConversationService(database, book, clock=Clock())
    open_chat(service, "w1", "vi")
    text(service, "w1", "4")  # Q1 1.4
    text(service, "w1", "80 triệu")
    press(service, "w1", "3.4", "3.9")
    for _ in range(7):
        press(service, "w1", "yes")
    press(service, "w1", "none")
    text(service, "w1", "Quản lý giữ hộ chiếu của tôi")
    press(service, "w1", "yes")  # Q13: wants to consult

    with database.session() as s:
        worker = s.exec(select(Worker)).one()
        assert (worker.language, worker.consent, worker.employer_code, worker.residence_status, worker.prefecture) \
            == ("vi", True, "ACME-01", "technical_intern_2", "23")
        sheet = s.exec(select(DiagnosisSession)).one()
        assert sheet.status == "completed" and sheet.employer_code == "ACME-01"
        answers = {a.question_id: a for a in s.exec(select(Answer)).all()}
        assert set(answers) == {f"Q{i}" for i in range(1, 14)}
        assert answers["Q2"].raw_text == "80 triệu" and answers["Q2"].value["currency"] == "VND"
        assert answers["Q12"].value == "Quản lý giữ hộ chiếu của tôi"
        result = s.exec(select(DiagnosisResult)).one()
        assert result.level == "critical" and {"1.4", "3.4", "3.9", "Q2"} <= set(result.indicators)
        assert result.fee_jpy == round(80_000_000 * book.currencies.by_code("VND").jpy_per_unit)
        handoff = s.exec(select(HandoffRequest)).one()
        assert (handoff.priority, handoff.reason, handoff.language, handoff.status) == \
            ("critical", "q13_yes", "vi", "waiting")
        assert handoff.summary["level"] == "critical"
        messages = s.exec(select(Message)).all()
        assert any(m.direction == "in" and m.text == "80 triệu" for m in messages)
        assert any(m.direction == "out" and m.kind == "result" for m in messages)


def test_a_new_process_resumes_at_the_next_question_with_earlier_answers_kept(database, book):
    first = ConversationService(database, book, clock=Clock())
    open_chat(first, "w2")
    press(first, "w2", "none")
    text(first, "w2", "$1,000")
    press(first, "w2", "3.2")
    for _ in range(3):  # Q4..Q6
        press(first, "w2", "yes")
    del first  # the process dies here

    second = ConversationService(database, book, clock=Clock())
    reopened = second.handle("web", "w2", InboundEvent(kind=InboundKind.FOLLOW))
    assert reopened[-1].question == "Q7"
    press(second, "w2", "yes")
    assert [o.question for o in press(second, "w2", "yes") if o.question] == ["Q9"]
    with database.session() as s:
        kept = {a.question_id for a in s.exec(select(Answer)).all()}
    assert kept == {f"Q{i}" for i in range(1, 9)}


def test_a_redelivered_provider_event_is_handled_once(database, book):
    service = ConversationService(database, book, clock=Clock())
    event = InboundEvent(kind=InboundKind.TEXT, text="hello")
    assert service.handle("line", "U1", event, provider_event_id="evt-1")
    assert service.handle("line", "U1", event, provider_event_id="evt-1") == []
    with database.session() as s:
        assert len(s.exec(select(Message).where(Message.direction == "in")).all()) == 1


def test_stop_opts_out_and_a_new_message_opts_back_in(database, book):
    service = ConversationService(database, book, clock=Clock())
    open_chat(service, "w3")
    text(service, "w3", "stop")
    with database.session() as s:
        assert s.exec(select(Worker)).one().opted_out is True
    text(service, "w3", "hi again")
    with database.session() as s:
        assert s.exec(select(Worker)).one().opted_out is False


def test_unfollow_marks_the_worker_unreachable(database, book):
    service = ConversationService(database, book, clock=Clock())
    open_chat(service, "w4")
    assert service.handle("web", "w4", InboundEvent(kind=InboundKind.UNFOLLOW)) == []
    with database.session() as s:
        assert s.exec(select(Worker)).one().reachable is False


def test_a_failing_step_leaves_nothing_half_written(database, book, monkeypatch):
    service = ConversationService(database, book, clock=Clock())
    open_chat(service, "w5")
    with database.session() as s:
        before = len(s.exec(select(Message)).all())

    import bot.service

    def broken_step(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bot.service, "step", broken_step)
    try:
        text(service, "w5", "1")
    except RuntimeError:
        pass
    monkeypatch.undo()
    with database.session() as s:
        assert len(s.exec(select(Message)).all()) == before, "the inbound message was rolled back with the step"
    assert text(service, "w5", "1")[-1].question == "Q2", "and the same message works when sent again"


def test_danger_words_open_one_urgent_case(database, book):
    service = ConversationService(database, book, clock=Clock())
    open_chat(service, "w6", "es")
    text(service, "w6", book.keywords["danger"]["es"][0])
    text(service, "w6", "persona")
    with database.session() as s:
        cases = s.exec(select(HandoffRequest)).all()
    assert len(cases) == 1 and cases[0].priority == "urgent"
    assert cases[0].summary["reasons"] == ["danger_words", "asked"]


def test_the_default_sqlite_database_runs_in_wal_mode(tmp_path):
    from sqlalchemy import text as sql

    from bot.store.db import Database

    db = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    db.migrate()
    with db.engine.connect() as conn:
        assert conn.execute(sql("PRAGMA journal_mode")).scalar() == "wal"


def test_what_the_service_writes_reaches_the_sqlite_file_itself_not_only_its_log(tmp_path, book):
    """The write-ahead log is copied into the database while the service runs (outside the write lock), so
    that the log does not grow without end and a copy of the database file has the conversations in it."""
    import time

    from bot.store.db import Database

    path = tmp_path / "busy.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    before = path.stat().st_size
    service = ConversationService(db, book, clock=Clock())
    started = time.monotonic()
    user = 0
    while time.monotonic() - started < 1.5:  # longer than the pause between two checkpoints
        user += 1
        open_chat(service, f"w{user}")
    deadline = time.monotonic() + 10
    while path.stat().st_size <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.stat().st_size > before
    with db.session() as s:
        assert len(s.exec(select(Worker)).all()) == user


def test_the_sqlite_log_stays_bounded_while_some_reader_always_holds_a_snapshot(tmp_path, monkeypatch):
    """Under steady load the stepping process is always reading while webhooks are written: the log is never
    found fully copied, so it is started again from its beginning by force once it is long, or it would grow
    as long as the load lasts (250 MB in 25 s of bench/webhooks.py)."""
    import threading
    import time

    from bot.store.db import Database, SqliteWriterLock

    monkeypatch.setattr(SqliteWriterLock, "RESTART_LOG_AFTER_FRAMES", 300)
    monkeypatch.setattr(SqliteWriterLock, "CHECKPOINT_EVERY_SECONDS", 0.05)
    path = tmp_path / "busy.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    writing = threading.Event()
    writing.set()

    def reader(offset: float) -> None:  # two of them, overlapping: there is always a snapshot being read
        time.sleep(offset)
        while writing.is_set():
            with db.reading() as s:
                s.exec(select(Worker.id)).all()
                time.sleep(0.02)

    readers = [threading.Thread(target=reader, args=(offset,), daemon=True) for offset in (0, 0.01)]
    for thread in readers:
        thread.start()
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    largest = 0
    for batch in range(400):
        with db.session() as s:
            s.add_all([Worker(channel="line", channel_user_id=f"U{batch}-{n}", language="en", created_at=now,
                              last_active_at=now) for n in range(10)])
        largest = max(largest, Path(f"{path}-wal").stat().st_size)
    writing.clear()
    for thread in readers:
        thread.join(5)

    assert largest < 4 * 1024 * 1024, f"the log grew to {largest} bytes"
    with db.session() as s:
        assert len(s.exec(select(Worker.id)).all()) == 4000


def test_a_step_that_read_the_state_before_someone_else_changed_it_does_not_overwrite_the_change(database, book):
    """A counsellor resuming the bot (or the retention job) changes a worker's state while the bot is stepping
    a message it read the state for: the step's transaction fails and is done again; the change stays."""
    service = ConversationService(database, book, clock=Clock())
    open_chat(service, "w1")
    with database.session() as s:
        worker_id = s.exec(select(Worker.id)).one()
        read_by_the_step = ConversationRepository(s).load_states([worker_id])[worker_id]
    with database.session() as s:
        row = s.get(ConversationStateRow, worker_id)
        row.state, row.version = {**row.state, "paused": True}, row.version + 1
        s.add(row)

    with pytest.raises(StaleState), database.session() as s:
        repo = ConversationRepository(s)
        repo.save_state_row(read_by_the_step, worker_id, {**read_by_the_step.state, "step": "menu"},
                            datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
        repo.write_new_rows()

    with database.session() as s:
        assert s.get(ConversationStateRow, worker_id).state["paused"] is True
    # Stepped again, the message reads the state as it now is.
    text(service, "w1", "menu")
    with database.session() as s:
        assert s.get(ConversationStateRow, worker_id).version == read_by_the_step.version + 2


def test_many_log_entries_written_at_once_read_back_exactly_as_one_at_a_time(database):
    """A batch of turns writes its transcript lines in one go (COPY on PostgreSQL): what a counsellor reads back
    must be the same, character for character, as lines written one by one, whatever the worker typed."""
    from bot.store.crypto import GCM_PREFIX
    from bot.store.models import Message, Worker
    from bot.store.repository import insert_rows

    awkward = ["tab\there", "two\nlines", "back\\slash \\N", "", "ကျေးဇူး 谢谢 😀", "comma, \"quote\" 'apostrophe'",
               "\r\n\x0b", "NULL", "\\."]
    at = datetime(2026, 11, 25, 9, 30, 15, 123456, tzinfo=UTC)
    with database.session() as s:
        worker = Worker(channel="line", channel_user_id="U-copy", language="my", created_at=at, last_active_at=at)
        s.add(worker)
        s.flush()
        rows = [dict(worker_id=worker.id, channel="line", direction="in", kind="text", text=text,
                     payload={"event": {"text": text, "n": n, "nested": [None, True, 1.5]}}, question=text[:32] or None,
                     provider_event_id=f"evt\t{n}\n{text}"[:128], created_at=at + timedelta(seconds=n),
                     delivered_at=None if n % 2 else at) for n, text in enumerate(awkward)]
        insert_rows(s, Message.__table__, rows[:2])  # too few for a COPY: plain INSERTs
        insert_rows(s, Message.__table__, rows[2:])
        worker_id = worker.id
    with database.session() as s:
        stored = s.exec(select(Message).where(Message.worker_id == worker_id).order_by(Message.id)).all()
        assert [(m.text, m.payload, m.question, m.provider_event_id, m.created_at, m.delivered_at) for m in stored] == [
            (r["text"], r["payload"], r["question"], r["provider_event_id"], r["created_at"], r["delivered_at"])
            for r in rows]
    with database.engine.connect() as conn:  # and on disk, the words are as unreadable as ever
        raw = conn.exec_driver_sql(f"SELECT text, payload FROM message WHERE worker_id = {worker_id}").all()
    assert len(raw) == len(awkward) and all(t.startswith(GCM_PREFIX) and p.startswith(GCM_PREFIX) for t, p in raw)


def test_a_batch_of_steps_that_read_one_state_before_a_change_writes_none_of_them(database, book):
    """Several workers' turns are written together (one statement on PostgreSQL). If one worker's state changed
    since the batch read it, the whole batch is refused, so the batch can be stepped again one by one; a batch
    nobody interfered with is written whole, every worker's turn and last activity with it."""
    service = ConversationService(database, book, clock=Clock())
    users = [f"w{n}" for n in range(6)]
    for user in users:
        open_chat(service, user)
    at = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    with database.session() as s:
        ids = list(s.exec(select(Worker.id).order_by(Worker.id)).all())
        read = ConversationRepository(s).load_states(ids)
    with database.session() as s:  # a counsellor pauses the bot for the fourth worker meanwhile
        row = s.get(ConversationStateRow, ids[3])
        row.state, row.version = {**row.state, "paused": True}, row.version + 1
        s.add(row)

    def write_batch(worker_ids: list[int]) -> None:
        with database.session() as s:
            repo = ConversationRepository(s)
            for worker_id in worker_ids:
                repo.save_state_row(read[worker_id], worker_id, {**read[worker_id].state, "step": "menu"}, at)
                repo.change_worker(s.get(Worker, worker_id), last_active_at=at, last_inbound_at=at)
            repo.write_new_rows()

    with pytest.raises(StaleState):
        write_batch(ids)
    with database.session() as s:
        states = {i: s.get(ConversationStateRow, i) for i in ids}
        assert states[ids[3]].state["paused"] is True
        assert [states[i].version for i in ids] == [read[i].version + (i == ids[3]) for i in ids], "nothing kept"
        assert all(s.get(Worker, i).last_inbound_at != at for i in ids)

    others = [i for i in ids if i != ids[3]]
    write_batch(others)
    with database.session() as s:
        for i in others:
            assert s.get(ConversationStateRow, i).state == {**read[i].state, "step": "menu"}
            assert s.get(ConversationStateRow, i).version == read[i].version + 1
            assert s.get(Worker, i).last_inbound_at == at
        assert s.get(ConversationStateRow, ids[3]).state["paused"] is True
