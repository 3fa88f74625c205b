"""Check-in nudges as a worker lives them: a reminder when a sheet is left half-done (twice at most), an
invitation to check again every 90 days, a follow-up a week after a counsellor's case, never at night and
never after "stop"."""
from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.inbox import InboxService
from bot.store.models import HandoffRequest, NudgeLog, OutboxMessage
from bot.translation import Translator


def texts_to(world, user: str) -> list[str]:  # type: ignore[no-untyped-def]
    return world.fakes.line.texts_to(user)


def test_a_half_done_sheet_is_reminded_after_24_and_72_hours_and_never_a_third_time(world):
    world.join("U-lan", "vi")
    world.press("U-lan", "none")  # Q1 answered, then the worker puts the phone away
    world.dispatch()
    before = len(texts_to(world, "U-lan"))

    world.clock.advance(hours=23, minutes=59)
    assert world.nudges.run() == {}, "not before 24 hours"
    world.clock.advance(minutes=1)
    assert world.nudges.run() == {"reminder sent": 1}
    world.dispatch()
    reminder = texts_to(world, "U-lan")[before:]
    assert len(reminder) == 1
    assert "Còn 12 câu hỏi" in reminder[0], "in Vietnamese, with how many questions are left"
    assert world.service.book.question("Q2").text("vi") in reminder[0], "and the question to go on with"

    world.clock.advance(hours=24)  # 48 hours of silence
    assert world.nudges.run() == {}
    world.clock.advance(hours=24)  # 72 hours
    assert world.nudges.run() == {"reminder sent": 1}
    for _ in range(5):
        world.clock.advance(days=3)
        assert world.nudges.run() == {}, "two reminders, never a third"
    world.dispatch()
    assert len(texts_to(world, "U-lan")) == before + 2

    world.say("U-lan", "0")  # the worker comes back and answers Q2 straight from the reminder
    assert world.service.history("line", "U-lan")[-1]["question"] == "Q3"


def test_a_reminder_due_at_night_waits_for_the_morning_and_is_never_dropped(world):
    world.clock.set_tokyo(0, 21, 30)
    world.join("U-an", "vi")
    world.press("U-an", "none")
    world.dispatch()
    assert texts_to(world, "U-an"), "the worker's own conversation is answered at any hour"
    before = len(texts_to(world, "U-an"))

    world.clock.set_tokyo(1, 21, 30)  # 24 hours later, but 21:30 in Tokyo
    assert world.nudges.run() == {}
    world.clock.set_tokyo(2, 7, 59)
    assert world.nudges.run() == {}
    world.clock.set_tokyo(2, 8, 0)
    assert world.nudges.run() == {"reminder sent": 1}
    world.dispatch()
    assert len(texts_to(world, "U-an")) == before + 1


def test_a_nudge_written_just_before_quiet_hours_is_held_by_the_dispatcher_until_morning(world):
    world.clock.set_tokyo(0, 19, 0)
    world.join("U-binh", "vi")
    world.press("U-binh", "none")
    world.dispatch()
    before = len(texts_to(world, "U-binh"))
    world.clock.set_tokyo(1, 20, 59)
    assert world.nudges.run() == {"reminder sent": 1}
    world.clock.set_tokyo(1, 21, 0)  # the dispatcher comes to it a minute late
    world.dispatch()
    assert len(texts_to(world, "U-binh")) == before
    with world.db.session() as s:
        row = s.exec(select(OutboxMessage).where(OutboxMessage.source == "nudge")).one()
    assert row.status == "pending" and row.attempts == 0, "delayed, not failed"
    from bot.outbox import Dispatcher

    waiting = Dispatcher(world.db, world.channels, world.settings, world.clock)
    assert waiting.pending_count() == 0, "`mirai dispatch --until-empty` at night need not wait for the morning"
    waiting.locks.close()
    world.clock.set_tokyo(2, 8, 0)
    world.dispatch()
    assert len(texts_to(world, "U-binh")) == before + 1


def test_who_said_stop_or_blocked_the_bot_gets_no_nudge(world, book):
    for user in ("U-stop", "U-gone", "U-stays"):
        world.join(user, "pt")
        world.press(user, "none")
    world.say("U-stop", book.keywords["stop"]["pt"][0])
    world.say("U-gone", kind="unfollow")
    world.clock.advance(hours=25)
    assert world.nudges.run() == {"reminder sent": 1}
    with world.db.session() as s:
        logged = s.exec(select(NudgeLog)).all()
    assert [world_user(world, n.worker_id) for n in logged] == ["U-stays"]
    world.clock.advance(days=200)
    counts = world.nudges.run()
    assert sum(counts.values()) == 1 and "reminder sent" in counts, "only the one who stayed, never the others"


def world_user(world, worker_id: int) -> str:  # type: ignore[no-untyped-def]
    with world.db.session() as s:
        from bot.store.models import Worker

        return s.get(Worker, worker_id).channel_user_id


def test_a_worker_is_invited_to_check_again_every_90_days(world):
    world.join("U-maria", "es")
    world.finish_sheet("U-maria")
    world.dispatch()
    before = len(texts_to(world, "U-maria"))
    world.clock.advance(days=89)
    assert world.nudges.run() == {}
    world.clock.advance(days=1)
    assert world.nudges.run() == {"reinvite sent": 1}
    world.clock.advance(days=1)
    assert world.nudges.run() == {}, "once in each 90 days"
    world.dispatch()
    invitation = texts_to(world, "U-maria")[before:]
    assert len(invitation) == 1 and "13 preguntas" in invitation[0]

    world.press("U-maria", "start")  # the invitation offers the sheet; the worker takes it
    assert world.service.history("line", "U-maria")[-1]["question"] == "Q1"
    world.finish_sheet("U-maria")
    world.clock.advance(days=89)
    assert world.nudges.run() == {}, "counted again from the newest sheet"
    world.clock.advance(days=1)
    assert world.nudges.run() == {"reinvite sent": 1}


def test_a_week_after_a_case_is_resolved_the_worker_is_asked_whether_things_got_better(world):
    inbox = InboxService(world.db, world.service.book, Translator.from_settings(world.settings), world.outbox,
                         world.clock)
    counsellor = inbox.add_user("sato", "counsellor", "a long enough password", "ja")
    answers = {"U-ok": "better", "U-bad": "worse"}
    cases = {}
    for user in answers:
        world.join(user, "tl")
        world.press(user, "none")
        world.say(user, world.service.book.keywords["talk_to_person"]["tl"][0])
        with world.db.session() as s:
            case = s.exec(select(HandoffRequest).where(
                HandoffRequest.worker_id == world.worker(user).id)).one()
        inbox.claim(case.id, counsellor)
        inbox.reply(case.id, counsellor, "大丈夫ですか")
        inbox.resolve(case.id, counsellor)
        cases[user] = case.id
    world.dispatch()
    before = {u: len(texts_to(world, u)) for u in answers}

    world.clock.advance(days=6, hours=23)
    counts = world.nudges.run()
    assert "followup sent" not in counts
    world.clock.advance(hours=1)
    assert world.nudges.run().get("followup sent") == 2
    world.dispatch()
    for user in answers:
        asked = texts_to(world, user)[before[user]:]
        assert any(world.service.book.t("ask_followup", "tl") in t for t in asked)
        world.press(user, answers[user])

    with world.db.session() as s:
        recorded = {u: s.get(HandoffRequest, cases[u]).followup_answer for u in answers}
        again = s.exec(select(HandoffRequest).where(HandoffRequest.reason == "followup_worse")).all()
    assert recorded == answers, "the answer is recorded on the case"
    assert [h.worker_id for h in again] == [world.worker("U-bad").id], "worse: a counsellor is asked again"
    world.clock.advance(days=30)
    assert "followup sent" not in world.nudges.run(), "asked once"


def test_a_messenger_worker_silent_for_more_than_a_day_is_not_written_to(world):
    world.join("psid-1", "id", channel="messenger")
    world.press("psid-1", "none", channel="messenger")
    world.clock.advance(hours=25)
    assert world.nudges.run() == {"reminder skipped: outside the 24-hour messaging window": 1}
    world.dispatch()
    assert not [d for d in world.fakes.graph.delivered if d[2] != "RESPONSE"], "nothing outside the window"
    world.clock.advance(minutes=1)
    assert world.nudges.run() == {}, "counted once, not retried every minute"
    world.clock.advance(days=3)
    assert world.nudges.run() == {"reminder skipped: outside the 24-hour messaging window": 1}, "the second"
    world.clock.advance(days=30)
    assert world.nudges.run() == {}
