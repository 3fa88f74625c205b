"""Campaign broadcasts as the platform office runs them: the text in every worker's language, LINE in
multicast batches of 500, never at night, never to who said stop, never outside Messenger's 24 hours, never
faster than Telegram allows, and a progress that says what happened to everyone."""
from __future__ import annotations

from datetime import timedelta

from bot.campaigns import Audience
from bot.flowbook import LANGUAGES
from tests.scheduling.conftest import MORNING, populate

TEXTS = {lang: f"[{lang}] Human rights month: you can talk to us for free." for lang in LANGUAGES}
TEXTS["vi"] = "Tháng nhân quyền: bạn có thể nói chuyện miễn phí với chúng tôi."
TEXTS["ja"] = "人権月間です。無料で相談できます。"


def multicasts(fake):  # type: ignore[no-untyped-def]
    return [c for c in fake.calls("/v2/bot/message/multicast") if c.status == 200]


def test_line_workers_get_the_campaign_in_their_language_in_batches_of_500(world):
    vietnamese = populate(world.db, 1000, language="vi")
    japanese = populate(world.db, 201, language="ja", start=5000)
    populate(world.db, 3, opted_out=True, start=9000)
    populate(world.db, 2, reachable=False, start=9100)
    populate(world.db, 1, consent=False, start=9200)

    count = world.campaigns.count(Audience())
    assert count["recipients"] == 1201
    assert count["excluded"] == {"opted out": 3, "unreachable": 2, "no consent": 1}
    campaign = world.campaigns.create("human rights month", TEXTS, Audience(), None, None)
    assert world.campaigns.start_due() == [campaign.id]
    world.dispatch()

    calls = multicasts(world.fakes.line)
    assert sorted(len(c.json["to"]) for c in calls) == [201, 500, 500]
    assert all(len(c.json["to"]) <= 500 for c in world.fakes.line.calls("/multicast"))
    assert all(world.fakes.line.texts_to(u) == [TEXTS["vi"]] for u in vietnamese)
    assert all(world.fakes.line.texts_to(u) == [TEXTS["ja"]] for u in japanese)
    progress = world.campaigns.progress(campaign.id)
    assert (progress["status"], progress["sent"], progress["queued"], progress["failed"]) == ("done", 1201, 0, 0)
    assert progress["skipped_reasons"] == {"opted out": 3, "unreachable": 2, "no consent": 1}


def test_the_audience_filter_narrows_by_language_prefecture_status_employer_and_activity(world):
    populate(world.db, 4, language="vi", prefecture="23", residence_status="technical_intern_1",
             employer_code="AICHI-01")
    populate(world.db, 5, language="vi", prefecture="13", start=100)
    populate(world.db, 6, language="id", prefecture="23", start=200, employer_code="AICHI-01")
    populate(world.db, 7, language="vi", prefecture="23", start=300, last_inbound_at=MORNING - timedelta(days=400))
    assert world.campaigns.count(Audience(languages=["vi"], prefectures=["23"]))["recipients"] == 11
    assert world.campaigns.count(Audience(languages=["vi"], prefectures=["23"], active_within_days=30))[
        "recipients"] == 4
    assert world.campaigns.count(Audience(employer_codes=["AICHI-01"]))["by_language"] == {"vi": 4, "id": 6}
    assert world.campaigns.count(Audience(residence_statuses=["technical_intern_1"]))["recipients"] == 4
    assert world.campaigns.count(Audience(channels=["telegram"]))["recipients"] == 0


def test_a_campaign_due_at_night_is_held_until_eight_in_the_morning(world):
    users = populate(world.db, 10)
    world.clock.set_tokyo(0, 22, 0)
    campaign = world.campaigns.create("evening", TEXTS, Audience(), None, None)
    world.campaigns.start_due()
    world.dispatch()
    world.clock.set_tokyo(1, 7, 59)
    world.dispatch()
    assert not world.fakes.line.delivered, "nothing between 21:00 and 08:00"
    assert world.campaigns.progress(campaign.id)["queued"] == 10, "delayed, not dropped"
    world.clock.set_tokyo(1, 8, 0)
    world.dispatch()
    assert all(world.fakes.line.texts_to(u) == [TEXTS["vi"]] for u in users)


def test_who_says_stop_after_the_campaign_was_queued_does_not_get_it(world, book):
    world.join("U-quits", "vi")
    others = populate(world.db, 5)
    world.clock.set_tokyo(0, 23, 0)
    campaign = world.campaigns.create("night", TEXTS, Audience(), None, None)
    world.campaigns.start_due()
    world.say("U-quits", book.keywords["stop"]["vi"][0])  # at night, before it goes out
    world.dispatch()
    before = len(world.fakes.line.texts_to("U-quits"))
    world.clock.set_tokyo(1, 9, 0)
    world.dispatch()
    assert len(world.fakes.line.texts_to("U-quits")) == before
    assert all(world.fakes.line.texts_to(u) == [TEXTS["vi"]] for u in others)
    progress = world.campaigns.progress(campaign.id)
    assert progress["skipped_reasons"] == {"opted out": 1} and progress["sent"] == 5


def test_a_cancelled_campaign_sends_nothing_more(world):
    populate(world.db, 30)
    world.clock.set_tokyo(0, 21, 30)
    campaign = world.campaigns.create("mistake", TEXTS, Audience(), None, None)
    world.campaigns.start_due()
    progress = world.campaigns.cancel(campaign.id)
    assert progress["status"] == "cancelled" and progress["skipped_reasons"] == {"campaign cancelled": 30}
    world.clock.set_tokyo(1, 9, 0)
    world.dispatch()
    assert not world.fakes.line.delivered


def test_messenger_workers_silent_for_more_than_24_hours_are_skipped_with_the_reason(world):
    recent = populate(world.db, 3, channel="messenger", language="es", last_inbound_at=MORNING - timedelta(hours=2))
    populate(world.db, 4, channel="messenger", language="es", start=50, last_inbound_at=MORNING - timedelta(hours=30))
    campaign = world.campaigns.create("news", TEXTS, Audience(channels=["messenger"]), None, None)
    world.campaigns.start_due()
    world.dispatch()
    delivered = world.fakes.graph.delivered
    assert sorted(d[0] for d in delivered) == sorted(recent)
    assert {d[2] for d in delivered} == {"UPDATE"}, "inside the window, sent as an update"
    progress = world.campaigns.progress(campaign.id)
    assert progress["sent"] == 3
    assert progress["skipped_reasons"] == {"outside the 24-hour messaging window": 4}


def test_telegram_sends_are_paced_to_30_a_second(world):
    users = populate(world.db, 75, channel="telegram", language="my")
    world.campaigns.create("paced", TEXTS, Audience(channels=["telegram"]), None, None)
    world.campaigns.start_due()
    world.dispatch()
    sends = sorted(c.at for c in world.fakes.telegram.calls("sendMessage"))
    assert len(sends) == 75 and sorted(d[0] for d in world.fakes.telegram.delivered) == sorted(users)
    # The sender takes a turn every 1/30 s; the fake server sees the requests with the jitter of a busy machine
    # (one request held back a few milliseconds lets the next second's first one into this second), so a window
    # of one second may hold one or two more, while the whole run can never be faster than 30 a second.
    assert sends[-1] - sends[0] >= (len(sends) - 1) / 30 - 0.1, "75 messages took at least 2.4 s"
    busiest = max(sum(1 for t in sends if start <= t < start + 1.0) for start in sends)
    assert busiest <= 32, f"{busiest} messages within one second"
