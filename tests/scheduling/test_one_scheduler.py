"""Production's shape: two `mirai serve` processes on one PostgreSQL, each with the scheduler in it. Only one
leads; when it dies the other takes over. 30 workers who left their sheet half-done each get their two
reminders, once each: none missing, none doubled, whoever was leading at the time."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from bot.channels.registry import build_channels
from bot.messages import InboundEvent, InboundKind
from bot.outbox import Outbox
from bot.service import ConversationService
from bot.store.models import NudgeLog
from tests.channels.conftest import LINE_SECRET, channel_settings, wait_until
from tests.pgserver import free_port

MIRAI = str(Path(sys.executable).parent / "mirai")
WORKERS = 30


def reminders_to(fake, user: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [t for t in fake.texts_to(user) if "câu hỏi" in t and "Còn" in t]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_app_processes_send_each_reminder_once_even_when_the_leader_dies(database, database_url, fakes,
                                                                              tmp_path):
    service = ConversationService(database, outbox=Outbox(build_channels(channel_settings(database_url, fakes))))
    users = [f"U{n:032x}" for n in range(1, WORKERS + 1)]
    for user in users:  # each joins in Vietnamese, answers Q1 and goes quiet
        for event in (InboundEvent(kind=InboundKind.FOLLOW, language_hint="vi", language_chosen=True),
                      *[InboundEvent(kind=InboundKind.CHOICE, choice_ids=[c])
                        for c in ("agree", "skip", "skip", "skip", "none")]):
            service.handle("line", user, event)

    env = {**os.environ, "DATABASE_URL": database_url, "LINE_CHANNEL_SECRET": LINE_SECRET,
           "LINE_CHANNEL_ACCESS_TOKEN": fakes.line.access_token, "LINE_API_BASE_URL": fakes.line.base_url,
           "TELEGRAM_BOT_TOKEN": "", "MESSENGER_APP_SECRET": "", "LOG_LEVEL": "info",
           # Reminders after 4 and 20 seconds instead of 24 and 72 hours; no quiet hours, whatever time it is.
           "REMINDER_HOURS": f"{4 / 3600},{20 / 3600}", "QUIET_HOURS": "", "SCHEDULER_INTERVAL_SECONDS": "0.5",
           "RUN_SCHEDULER_IN_PROCESS": "true"}
    logs = [open(tmp_path / f"serve-{i}.log", "wb") for i in range(2)]  # noqa: SIM115
    ports = [free_port(), free_port()]
    first = subprocess.Popen([MIRAI, "serve", "--port", str(ports[0])], env=env, cwd=tmp_path, stdout=logs[0],
                             stderr=logs[0])
    second = None
    try:
        _wait_ready(ports[0])
        second = subprocess.Popen([MIRAI, "serve", "--port", str(ports[1])], env=env, cwd=tmp_path,
                                  stdout=logs[1], stderr=logs[1])
        _wait_ready(ports[1])
        wait_until(lambda: all(reminders_to(fakes.line, u) for u in users), timeout=60)
        assert not any(len(reminders_to(fakes.line, u)) > 1 for u in users)
        first.kill()  # the leader dies between the first and the second reminders
        first.wait()
        wait_until(lambda: "this process runs the scheduler" in (tmp_path / "serve-1.log").read_text(), timeout=30)
        wait_until(lambda: all(len(reminders_to(fakes.line, u)) >= 2 for u in users), timeout=60)
        time.sleep(3)  # time enough for any double to show
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
    led = [(tmp_path / f"serve-{i}.log").read_text() for i in range(2)]
    assert [log.count("this process runs the scheduler") for log in led] == [1, 1], "one led, then the other"
    ours = [json.loads(line) for log in led for line in log.splitlines() if line.startswith('{"time"')]
    assert {"time", "level", "logger", "message"} <= set(ours[0]), "structured logs, one JSON object a line"
    assert any(e["logger"] == "mirai.scheduler" and "stands by" in e["message"] for e in ours)
    assert all(len(reminders_to(fakes.line, u)) == 2 for u in users), \
        {u: len(reminders_to(fakes.line, u)) for u in users if len(reminders_to(fakes.line, u)) != 2}
    with database.session() as s:
        assert len(s.exec(select(NudgeLog)).all()) == 2 * WORKERS


def _wait_ready(port: int) -> None:
    wait_until(lambda: _ready(port), timeout=60)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
