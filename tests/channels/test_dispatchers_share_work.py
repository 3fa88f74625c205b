"""An operator starts several `mirai dispatch` processes (on purpose, to scale, or by mistake at 3 a.m.): they
share the queue, and every worker still gets each message once and in order."""
from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sqlmodel import select

from bot.channels.registry import build_channels
from bot.store.models import OutboxMessage
from tests.channels.conftest import LINE_SECRET
from tests.channels.test_outbox_reliability import line_only, line_worker, queue_texts


def test_three_dispatchers_deliver_each_message_once_and_in_order(database, database_url, fakes, tmp_path):
    settings = line_only(database_url, fakes)
    channels = build_channels(settings)
    users = [f"U{n:032x}" for n in range(1, 201)]
    for user in users:
        queue_texts(database, channels, line_worker(database, user), [f"{user} #{i}" for i in range(8)])
    fakes.line.delay_seconds = 0.003

    env = {**os.environ, "DATABASE_URL": database_url, "LINE_CHANNEL_SECRET": LINE_SECRET,
           "LINE_CHANNEL_ACCESS_TOKEN": fakes.line.access_token, "LINE_API_BASE_URL": fakes.line.base_url,
           "TELEGRAM_BOT_TOKEN": "", "MESSENGER_APP_SECRET": ""}
    command = [str(Path(sys.executable).parent / "mirai"), "dispatch", "--until-empty"]
    senders = [subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for _ in range(3)]
    for sender in senders:
        output, _ = sender.communicate(timeout=180)
        assert sender.returncode == 0, output.decode()

    counts = Counter(m["text"] for _, m in fakes.line.delivered)
    assert len(counts) == 1600 and set(counts.values()) == {1}, [t for t, c in counts.items() if c > 1][:5]
    for user in users:
        assert fakes.line.texts_to(user) == [f"{user} #{i}" for i in range(8)]
    with database.session() as s:
        assert set(s.exec(select(OutboxMessage.status)).all()) == {"sent"}
    pushes = fakes.line.calls("/v2/bot/message/push")
    assert len(pushes) == 1600, "no message was even attempted twice"
