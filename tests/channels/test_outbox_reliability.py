"""What a worker must never notice: a provider that says "slow down", fails for a while, loses its answers, or
a sender killed half-way through a thousand messages. Every message arrives, once, in order."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlmodel import select

from bot.channels.registry import build_channels
from bot.messages import Outbound, OutboundKind
from bot.outbox import Dispatcher, Outbox
from bot.service import utcnow
from bot.store.models import OutboxMessage, Worker
from tests.channels.conftest import LINE_SECRET, channel_settings, settled
from tests.fakes.signing import line_text_event, line_webhook

PUSH = "/v2/bot/message/push"


def line_worker(db, user_id: str = "U0000000000000000000000000000a001") -> Worker:  # type: ignore[no-untyped-def]
    with db.session() as s:
        worker = Worker(channel="line", channel_user_id=user_id, language="en", created_at=utcnow(),
                        last_active_at=utcnow())
        s.add(worker)
        s.flush()
        s.refresh(worker)
        s.expunge(worker)
        return worker


def queue_texts(db, channels, worker: Worker, texts: list[str]) -> None:  # type: ignore[no-untyped-def]
    outbox = Outbox(channels)
    with db.session() as s:
        for text in texts:
            outbox.enqueue(s, worker, [Outbound(kind=OutboundKind.TEXT, text=text)], utcnow())


def dispatch_all(database, settings) -> None:  # type: ignore[no-untyped-def]
    channels = {n: c for n, c in build_channels(settings).items() if c.enabled()}
    dispatcher = Dispatcher(database, channels, settings, utcnow)

    async def run() -> None:
        try:
            await dispatcher.run_until_empty(timeout=30)
        finally:
            await dispatcher.close()

    asyncio.run(run())


def line_only(database_url: str, fakes, **overrides):  # type: ignore[no-untyped-def]
    return channel_settings(database_url, fakes, telegram_bot_token="", messenger_app_secret="", **overrides)


def test_too_many_requests_with_retry_after_is_waited_out_then_delivered_once(database, database_url, fakes):
    settings = line_only(database_url, fakes)
    worker = line_worker(database)
    queue_texts(database, build_channels(settings), worker, ["Your answers are saved."])
    fakes.line.fail_next(429, headers={"Retry-After": "1"}, path_contains=PUSH)

    dispatch_all(database, settings)

    pushes = fakes.line.calls(PUSH)
    assert [p.status for p in pushes] == [429, 200]
    assert pushes[1].at - pushes[0].at >= 1.0, "the provider's Retry-After was honoured"
    assert fakes.line.texts_to(worker.channel_user_id) == ["Your answers are saved."]


def test_five_server_errors_then_success_delivers_once_with_the_same_retry_key(database, database_url, fakes):
    settings = line_only(database_url, fakes)
    worker = line_worker(database)
    queue_texts(database, build_channels(settings), worker, ["first", "second"])
    fakes.line.fail_next(500, count=5, path_contains=PUSH)

    dispatch_all(database, settings)

    pushes = fakes.line.calls(PUSH)
    assert [p.status for p in pushes] == [500] * 5 + [200, 200]
    assert len({p.headers["x-line-retry-key"] for p in pushes[:6]}) == 1
    assert fakes.line.texts_to(worker.channel_user_id) == ["first", "second"], "order kept behind the failures"
    with database.session() as s:
        assert [r.status for r in s.exec(select(OutboxMessage).order_by(OutboxMessage.id))] == ["sent", "sent"]


def test_an_answer_lost_after_delivery_does_not_send_a_second_copy(database, database_url, fakes):
    settings = line_only(database_url, fakes)
    worker = line_worker(database)
    queue_texts(database, build_channels(settings), worker, ["Passport question saved."])
    fakes.line.fail_next(0, path_contains=PUSH, after_delivery=True)  # delivered, then the connection drops

    dispatch_all(database, settings)

    assert fakes.line.texts_to(worker.channel_user_id) == ["Passport question saved."]
    assert [p.status for p in fakes.line.calls(PUSH)] == [0, 409]


def test_a_provider_that_keeps_failing_is_given_up_on_and_the_reason_kept(database, database_url, fakes):
    settings = line_only(database_url, fakes, outbox_max_attempts=3)
    worker = line_worker(database)
    queue_texts(database, build_channels(settings), worker, ["never arrives"])
    fakes.line.fail_next(503, count=10, path_contains=PUSH)

    dispatch_all(database, settings)

    with database.session() as s:
        row = s.exec(select(OutboxMessage)).one()
    assert row.status == "failed" and row.attempts == 3 and row.last_error.startswith("503")


def test_a_slow_provider_does_not_hold_up_the_webhook_answer(served, fakes):
    fakes.line.delay_seconds = 1.5
    body, headers = line_webhook([line_text_event("U0000000000000000000000000000b002", "hello",
                                                  reply_token=fakes.line.issue_reply_token("U0000000000000000000000000000b002"))],
                                 LINE_SECRET)
    response = served.client.post("/webhooks/line", content=body, headers=headers)
    assert response.status_code == 200
    assert not fakes.line.delivered, "the webhook was answered before the reply was sent"
    settled(served.db)
    assert fakes.line.texts_to("U0000000000000000000000000000b002")


def test_killing_the_sender_midway_through_a_thousand_messages_loses_and_repeats_nothing(
        database, database_url, fakes, tmp_path):
    settings = line_only(database_url, fakes)
    users = [f"U{n:032x}" for n in range(100)]
    channels = build_channels(settings)
    for user in users:
        worker = line_worker(database, user)
        queue_texts(database, channels, worker, [f"{user} message {i}" for i in range(10)])
    fakes.line.delay_seconds = 0.01  # a realistic round trip, so the kill lands mid-run

    env = {**os.environ, "DATABASE_URL": database_url, "LINE_CHANNEL_SECRET": LINE_SECRET,
           "LINE_CHANNEL_ACCESS_TOKEN": fakes.line.access_token, "LINE_API_BASE_URL": fakes.line.base_url,
           "TELEGRAM_BOT_TOKEN": "", "MESSENGER_APP_SECRET": "", "OUTBOX_RETRY_BASE_SECONDS": "0.05"}
    command = [str(Path(sys.executable).parent / "mirai"), "dispatch", "--until-empty"]
    sender = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while len(fakes.line.delivered) < 300 and time.monotonic() < deadline and sender.poll() is None:
        time.sleep(0.01)
    sender.send_signal(signal.SIGKILL)
    sender.wait(timeout=10)
    delivered_before_restart = len(fakes.line.delivered)
    assert 0 < delivered_before_restart < 1000, "the sender was killed in the middle of its work"

    restarted = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, timeout=120)
    assert restarted.returncode == 0, restarted.stdout.decode() + restarted.stderr.decode()

    texts = [m["text"] for _, m in fakes.line.delivered]
    counts = Counter(texts)
    assert len(counts) == 1000 and set(counts.values()) == {1}, \
        f"{len(counts)} distinct, duplicates: {[t for t, c in counts.items() if c > 1][:5]}"
    for user in users:  # and each worker's messages arrived in the order they were written
        assert fakes.line.texts_to(user) == [f"{user} message {i}" for i in range(10)]
    with database.session() as s:
        assert set(s.exec(select(OutboxMessage.status)).all()) == {"sent"}
