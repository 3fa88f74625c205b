"""Free text is kept for FREE_TEXT_RETENTION_DAYS and then erased, while the structure (who answered what kind of
question when, levels, indicators) stays for the reports."""
from __future__ import annotations

from sqlalchemy import update
from sqlmodel import select

from bot.channels.registry import build_channels
from bot.inbox import InboxService
from bot.outbox import Outbox
from bot.privacy import purge_expired_free_text
from bot.service import ConversationService
from bot.settings import Settings
from bot.store.models import (
    Answer,
    CaseNote,
    ConversationStateRow,
    DiagnosisResult,
    InboundQueue,
    Message,
    OutboxMessage,
    Worker,
)
from bot.translation import Translator
from tests.privacy.conftest import Clock, ServiceWorker

OLD_STORY = "they keep my passport in the office safe"
NEW_STORY = "my overtime is not paid since October"


def line_outbox() -> Outbox:
    channels = build_channels(Settings(line_channel_secret="secret", line_channel_access_token="token"))
    return Outbox({"line": channels["line"]})


def test_free_text_older_than_the_retention_period_is_erased_and_the_structure_stays(database, book):
    clock = Clock()
    service = ConversationService(database, book, clock=clock, outbox=line_outbox())
    old = ServiceWorker(service, "U-old-0001", channel="line")
    old.follow("en")
    old.sheet_with_free_text(book, OLD_STORY, talk_to_counsellor=True)
    inbox = InboxService(database, book, Translator("none"), None, clock)
    sato = inbox.add_user("sato", "counsellor", "correct horse battery", "en")
    (case,) = inbox.conversations(sato)
    inbox.add_note(case["id"], sato, "called about the passport")
    with database.session() as s:  # the dispatcher sent them
        s.execute(update(OutboxMessage).values(status="sent"))
        s.add(InboundQueue(channel="line", channel_user_id="U-old-0001", provider_event_id="evt-1",
                           event={"event": {"kind": "text", "text": OLD_STORY}}, status="done",
                           received_at=clock()))

    clock.advance(days=400)
    recent = ServiceWorker(service, "U-new-0002", channel="line")
    recent.follow("en")
    recent.sheet_with_free_text(book, NEW_STORY)

    counts = purge_expired_free_text(database, clock(), retention_days=365)
    assert counts["message"] > 20 and counts["answer"] == 13 and counts["case_note"] == 1
    assert counts["inbound_queue"] == 1 and counts["outbox"] > 10 and counts["conversation_state"] == 1

    with database.session() as s:
        workers = {w.channel_user_id: w.id for w in s.exec(select(Worker))}
        old_id, new_id = workers["U-old-0001"], workers["U-new-0002"]
        old_messages = s.exec(select(Message).where(Message.worker_id == old_id)).all()
        new_texts = [m.text for m in s.exec(select(Message).where(Message.worker_id == new_id))]
        answers = {(a.session_id, a.question_id): a for a in s.exec(select(Answer))}
        results = s.exec(select(DiagnosisResult).order_by(DiagnosisResult.id)).all()
        note = s.exec(select(CaseNote)).one()
        old_state = s.get(ConversationStateRow, old_id)
        new_state = s.get(ConversationStateRow, new_id)
        event = s.exec(select(InboundQueue)).one()
        sent = s.exec(select(OutboxMessage).where(OutboxMessage.worker_id == old_id)).all()

    assert all(m.text == "" and m.payload == {} for m in old_messages), "old bodies are gone"
    assert {(m.direction, m.kind) for m in old_messages} >= {("in", "follow"), ("in", "choice"), ("in", "text")}, \
        "who wrote what kind of message when stays"
    assert NEW_STORY in new_texts, "recent conversations are untouched"
    old_sheet, new_sheet = sorted({key[0] for key in answers})
    assert answers[(old_sheet, "Q12")].raw_text == "" and answers[(old_sheet, "Q12")].value is None
    assert answers[(old_sheet, "Q1")].value == [], "structured answers stay"
    assert answers[(new_sheet, "Q12")].value == NEW_STORY
    assert len(results) == 2 and all(r.level for r in results), "results stay for the reports"
    assert note.text == "" and event.event == {} and all(r.payload == {} for r in sent)
    assert old_state.state["raw_answers"] == {} and "Q12" not in old_state.state["answers"]
    assert new_state.state["raw_answers"]["Q12"] == NEW_STORY

    again = purge_expired_free_text(database, clock(), retention_days=365)
    assert sum(again.values()) == 0, "a second run finds nothing left to erase"


def test_mirai_privacy_purge_runs_from_the_command_line(tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'mirai.db'}", "FREE_TEXT_RETENTION_DAYS": "30"}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "privacy", "purge"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "free text older than 30 days is erased" in done.stdout


def test_settings_that_would_make_the_privacy_notice_untrue_stop_the_service_and_doctor_says_which(tmp_path):
    """Every worker agreed to a notice that says their words are erased after a year and that employers see only
    groups of ten or more; an operator who sets a longer retention or smaller groups is stopped, not obeyed."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    mirai = str(Path(sys.executable).parent / "mirai")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/mirai.db", "FREE_TEXT_RETENTION_DAYS": "730",
           "REPORT_MIN_RESPONDENTS": "5", "PORT": "1"}
    for command in (["serve"], ["dispatch", "--role", "steps", "--until-empty"]):
        refused = subprocess.run([mirai, *command], capture_output=True, text=True, env=env, timeout=120)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "cannot start: FREE_TEXT_RETENTION_DAYS is 730, but the privacy notice tells workers" in refused.stderr
        assert "REPORT_MIN_RESPONDENTS is 5" in refused.stderr
        assert "Traceback" not in refused.stderr

    doctor = subprocess.run([mirai, "doctor"], capture_output=True, text=True, env=env, timeout=120)
    assert doctor.returncode == 1
    assert "BAD  privacy notice: FREE_TEXT_RETENTION_DAYS is 730" in doctor.stdout

    stricter = {**env, "FREE_TEXT_RETENTION_DAYS": "90", "REPORT_MIN_RESPONDENTS": "20"}
    kept = subprocess.run([mirai, "doctor"], capture_output=True, text=True, env=stricter, timeout=120)
    assert "ok   privacy notice: free text is erased after 90 days" in kept.stdout
