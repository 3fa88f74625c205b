"""A campaign that dies half-way finishes without a second copy: `mirai dispatch` is killed (SIGKILL) again and
again while it sends 5,000 LINE messages in multicast batches; after a last run every worker, counted by the
fake LINE server, has the message exactly once. (bench/broadcast.py --kills does the same at 20,000.)"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bot.campaigns import Audience
from tests.channels.conftest import LINE_SECRET
from tests.scheduling.conftest import populate
from tests.scheduling.test_campaigns import TEXTS

MIRAI = str(Path(sys.executable).parent / "mirai")
RECIPIENTS, KILLS = 5000, 5


@pytest.mark.parametrize("database_url", ["postgresql", "sqlite"], indirect=True)
def test_killing_the_dispatcher_again_and_again_loses_and_doubles_nothing(world, database_url):
    users = populate(world.db, RECIPIENTS, language="vi")
    campaign = world.campaigns.create("kills", TEXTS, Audience(), None, None)
    assert world.campaigns.enqueue(campaign.id) == RECIPIENTS
    env = {**os.environ, "DATABASE_URL": database_url, "LINE_CHANNEL_SECRET": LINE_SECRET,
           "LINE_CHANNEL_ACCESS_TOKEN": world.fakes.line.access_token, "LINE_API_BASE_URL": world.fakes.line.base_url,
           "TELEGRAM_BOT_TOKEN": "", "MESSENGER_APP_SECRET": "", "QUIET_HOURS": "",
           "LINE_MULTICAST_RATE_PER_SECOND": "2", "LOG_LEVEL": "warning"}
    rng = random.Random(3)
    kills = 0
    for _ in range(KILLS):
        before = len(world.fakes.line.calls("/multicast"))
        process = subprocess.Popen([MIRAI, "dispatch"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(world.fakes.line.calls("/multicast")) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.5))
        if process.poll() is None:
            process.kill()
            kills += 1
        process.wait()
    subprocess.run([MIRAI, "dispatch", "--until-empty"], env=env, check=True, timeout=300,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    received = Counter(to for to, _ in world.fakes.line.delivered)
    assert kills == KILLS
    assert set(received) == set(users), f"missing: {len(set(users) - set(received))}"
    assert max(received.values()) == 1, f"twice: {sum(1 for n in received.values() if n > 1)}"
    repeats = [c for c in world.fakes.line.calls("/multicast") if c.status == 409]
    assert repeats, "some batches were sent again after a kill, and LINE's retry key kept them single"
    progress = world.campaigns.progress(campaign.id)
    assert (progress["sent"], progress["status"]) == (RECIPIENTS, "done")
