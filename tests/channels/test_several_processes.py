"""Production's shape on one machine: two `mirai serve` processes take LINE webhooks and three `mirai dispatch`
processes step them and send the replies, all on one PostgreSQL. 5,000 webhooks from 250 workers: every one is
answered exactly once, and each worker's conversation advances in the order they wrote. Then a campaign to
20,000 workers, created through one api and followed through the other: the three dispatchers share its
multicast batches and every worker gets it exactly once (the fake LINE server counts)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from bot.flowbook import LANGUAGES
from bot.store.models import InboundQueue, Message, OutboxMessage, Worker
from tests.channels.conftest import LINE_SECRET
from tests.fakes.signing import line_text_event, line_webhook
from tests.pgserver import free_port
from tests.scheduling.conftest import populate

MIRAI = str(Path(sys.executable).parent / "mirai")
WORKERS, PER_WORKER = 250, 20
CAMPAIGN = 20_000
CAMPAIGN_TEXTS = {lang: f"[{lang}] December is human rights month." for lang in LANGUAGES}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_apis_and_three_dispatchers_answer_5000_webhooks_once_each(database, database_url, fakes, tmp_path):
    env = {**os.environ, "DATABASE_URL": database_url, "LINE_CHANNEL_SECRET": LINE_SECRET,
           "LINE_CHANNEL_ACCESS_TOKEN": fakes.line.access_token, "LINE_API_BASE_URL": fakes.line.base_url,
           "TELEGRAM_BOT_TOKEN": "", "MESSENGER_APP_SECRET": "", "RUN_WORKERS_IN_PROCESS": "false",
           "LOG_LEVEL": "warning", "QUIET_HOURS": ""}
    ports = [free_port(), free_port()]
    log = open(tmp_path / "processes.log", "wb")  # noqa: SIM115
    apis = [subprocess.Popen([MIRAI, "serve", "--port", str(p)], env=env, cwd=tmp_path, stdout=log, stderr=log)
            for p in ports]
    dispatchers = [subprocess.Popen([MIRAI, "dispatch"], env=env, cwd=tmp_path, stdout=log, stderr=log)
                   for _ in range(3)]
    try:
        for port in ports:
            _wait_ready(f"http://127.0.0.1:{port}")
        users = [f"U{n:032x}" for n in range(1, WORKERS + 1)]
        texts = ["hello", "1", "agree", "skip", "skip", "skip", "menu"] + [f"question {i}" for i in range(13)]
        bodies = []
        for round_ in range(PER_WORKER):
            for user in users:
                event = line_text_event(user, texts[round_], reply_token=fakes.line.issue_reply_token(user))
                bodies.append(line_webhook([event], LINE_SECRET))

        def post(i: int) -> int:
            body, headers = bodies[i]
            url = f"http://127.0.0.1:{ports[i % 2]}/webhooks/line"  # the load balancer alternates
            return httpx.post(url, content=body, headers=headers, timeout=30).status_code

        # One round at a time, as each worker waits for an answer before writing again.
        with ThreadPoolExecutor(16) as pool:
            for round_ in range(PER_WORKER):
                codes = list(pool.map(post, range(round_ * WORKERS, (round_ + 1) * WORKERS)))
                assert set(codes) == {200}
        _wait_for(lambda: _settled(database), timeout=300)

        # Then the office sends a campaign to 20,000 workers (the 250 above and 19,750 more) through one api,
        # and watches it through the other while the three dispatchers share the multicast batches.
        populate(database, CAMPAIGN - WORKERS, start=1_000_000)
        subprocess.run([MIRAI, "users", "add", "boss", "--role", "supervisor", "--password-stdin"], env=env,
                       input="a long enough password\n", text=True, check=True, capture_output=True, cwd=tmp_path)
        token = httpx.post(f"http://127.0.0.1:{ports[0]}/api/inbox/login",
                           json={"name": "boss", "password": "a long enough password"}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        created = httpx.post(f"http://127.0.0.1:{ports[0]}/api/campaigns", headers=auth, timeout=60,
                             json={"name": "human rights month", "texts": CAMPAIGN_TEXTS})
        assert created.status_code == 201, created.text
        progress_url = f"http://127.0.0.1:{ports[1]}/api/campaigns/{created.json()['id']}"
        _wait_for(lambda: httpx.get(progress_url, headers=auth).json()["status"] == "done", timeout=300)
        progress = httpx.get(progress_url, headers=auth).json()
    finally:
        for process in [*apis, *dispatchers]:
            process.terminate()
        for process in [*apis, *dispatchers]:
            process.wait(timeout=30)
        log.close()

    with database.session() as s:
        assert s.exec(select(InboundQueue.status)).all().count("done") == WORKERS * PER_WORKER
        inbound = s.exec(select(Message).where(Message.direction == "in").order_by(Message.id)).all()
        workers = {w.id: w.channel_user_id for w in s.exec(select(Worker))}
    assert len(inbound) == WORKERS * PER_WORKER, "every webhook stepped exactly once"
    per_user: dict[str, list[str]] = {}
    for message in inbound:
        per_user.setdefault(workers[message.worker_id], []).append(message.text)
    assert all(per_user[u] == texts for u in per_user), "each conversation advanced in the order it was written"
    replies = Counter(call.json["replyToken"] for call in fakes.line.calls("/v2/bot/message/reply")
                      if call.status == 200)
    pushes = fakes.line.calls("/v2/bot/message/push")
    assert len(replies) + len([p for p in pushes if p.status == 200]) >= WORKERS * PER_WORKER
    assert set(replies.values()) == {1}, "no reply token used twice"
    assert len({p.headers["x-line-retry-key"] for p in pushes if p.status == 200}) == \
        len([p for p in pushes if p.status == 200]), "no push accepted twice"

    assert (progress["sent"], progress["failed"], progress["skipped"]) == (CAMPAIGN, 0, 0)
    campaign = set(CAMPAIGN_TEXTS.values())
    got = Counter(to for to, m in fakes.line.delivered if m.get("text") in campaign)
    assert len(got) == CAMPAIGN and set(got.values()) == {1}, "every worker got the campaign exactly once"
    batches = [c for c in fakes.line.calls("/v2/bot/message/multicast") if c.status == 200]
    assert all(len(c.json["to"]) <= 500 for c in batches) and len(batches) <= CAMPAIGN // 500 + 18


def _wait_ready(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base} did not become ready")


def _settled(database) -> bool:  # type: ignore[no-untyped-def]
    with database.session() as s:
        return not s.exec(select(InboundQueue.id).where(InboundQueue.status == "pending")).first() and \
            not s.exec(select(OutboxMessage.id).where(OutboxMessage.status == "pending")).first()


def _wait_for(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("not settled in time")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_on_sqlite_steps_and_sends_run_in_processes_of_their_own(database, database_url, fakes, tmp_path):
    """The shape that uses both cores of a small SQLite server: `mirai serve` takes the webhooks, one
    `mirai dispatch --role steps` steps them, one `--role sends` sends. A second stepping process started by
    mistake waits (two would take one worker's messages out of order); every webhook is answered once, in order."""
    env = {**os.environ, "DATABASE_URL": database_url, "LINE_CHANNEL_SECRET": LINE_SECRET,
           "LINE_CHANNEL_ACCESS_TOKEN": fakes.line.access_token, "LINE_API_BASE_URL": fakes.line.base_url,
           "TELEGRAM_BOT_TOKEN": "", "MESSENGER_APP_SECRET": "", "RUN_WORKERS_IN_PROCESS": "false",
           "LOG_LEVEL": "warning", "QUIET_HOURS": ""}
    port = free_port()
    log_path = tmp_path / "processes.log"
    log = open(log_path, "wb")  # noqa: SIM115
    api = subprocess.Popen([MIRAI, "serve", "--port", str(port)], env=env, cwd=tmp_path, stdout=log, stderr=log)
    helpers = [subprocess.Popen([MIRAI, "dispatch", "--role", role], env=env, cwd=tmp_path, stdout=log, stderr=log)
               for role in ("steps", "steps", "sends")]
    users = [f"U{n:032x}" for n in range(1, 51)]
    texts = ["hello", "1", "agree", "skip", "skip", "skip", "menu", "question 1", "question 2", "question 3"]
    try:
        _wait_ready(f"http://127.0.0.1:{port}")
        with ThreadPoolExecutor(8) as pool:
            for text in texts:
                bodies = [line_webhook([line_text_event(u, text, reply_token=fakes.line.issue_reply_token(u))],
                                       LINE_SECRET) for u in users]
                codes = list(pool.map(lambda b: httpx.post(f"http://127.0.0.1:{port}/webhooks/line", content=b[0],
                                                           headers=b[1], timeout=30).status_code, bodies))
                assert set(codes) == {200}
        _wait_for(lambda: _settled(database), timeout=120)
    finally:
        for process in [api, *helpers]:
            process.terminate()
        for process in [api, *helpers]:
            process.wait(timeout=30)
        log.close()

    assert "another process is stepping webhook events for this SQLite database; this one waits" in \
        log_path.read_text()
    with database.session() as s:
        inbound = s.exec(select(Message).where(Message.direction == "in").order_by(Message.id)).all()
        workers = {w.id: w.channel_user_id for w in s.exec(select(Worker))}
    per_user: dict[str, list[str]] = {}
    for message in inbound:
        per_user.setdefault(workers[message.worker_id], []).append(message.text)
    assert len(per_user) == len(users) and all(per_user[u] == texts for u in per_user), \
        "every webhook stepped once, each conversation in the order it was written"
    replies = Counter(call.json["replyToken"] for call in fakes.line.calls("/v2/bot/message/reply")
                      if call.status == 200)
    assert len(replies) == len(users) * len(texts) and set(replies.values()) == {1}, "each answered exactly once"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_mirai_serve_alone_steps_and_sends_in_child_processes_that_come_back_and_die_with_it(
        database, database_url, fakes, tmp_path):
    """What `make run` starts: one `mirai serve`, whose stepping and sending run in two child processes so that
    they use the machine's other CPU. Workers are answered; a child that crashes is started again and nothing
    waiting is lost; when the server itself is killed, its children go with it and hold no lock."""
    env = {**os.environ, "DATABASE_URL": database_url, "LINE_CHANNEL_SECRET": LINE_SECRET,
           "LINE_CHANNEL_ACCESS_TOKEN": fakes.line.access_token, "LINE_API_BASE_URL": fakes.line.base_url,
           "TELEGRAM_BOT_TOKEN": "", "MESSENGER_APP_SECRET": "", "LOG_LEVEL": "info", "QUIET_HOURS": ""}
    for name in ("RUN_WORKERS_IN_PROCESS", "PIPELINE_PROCESSES"):
        env.pop(name, None)  # the defaults
    port = free_port()
    log_path = tmp_path / "serve.log"
    log = open(log_path, "wb")  # noqa: SIM115
    api = subprocess.Popen([MIRAI, "serve", "--port", str(port)], env=env, cwd=tmp_path, stdout=log, stderr=log)
    users = [f"U{n:032x}" for n in range(1, 21)]

    def everyone_writes(text: str) -> None:
        for user in users:
            body, headers = line_webhook([line_text_event(user, text, reply_token=fakes.line.issue_reply_token(user))],
                                         LINE_SECRET)
            assert httpx.post(f"http://127.0.0.1:{port}/webhooks/line", content=body, headers=headers,
                              timeout=30).status_code == 200

    try:
        _wait_ready(f"http://127.0.0.1:{port}")
        children = _children_by_role(api.pid)
        assert sorted(children) == ["sends", "steps"], children
        everyone_writes("hello")
        _wait_for(lambda: _settled(database), timeout=120)

        os.kill(children["steps"], 9)  # a crash: its webhooks wait in the database until it is back
        everyone_writes("1")
        _wait_for(lambda: _children_by_role(api.pid).get("steps") not in (None, children["steps"]), timeout=30)
        _wait_for(lambda: _settled(database), timeout=120)

        children = _children_by_role(api.pid)
        api.kill()  # no goodbye: the kernel ends the children
        api.wait(timeout=10)
        _wait_for(lambda: not any(_alive(pid) for pid in children.values()), timeout=15)
    finally:
        if api.poll() is None:
            api.kill()
        log.close()

    assert "the steps process ended (exit code -9)" in log_path.read_text()
    replies = Counter(call.json["replyToken"] for call in fakes.line.calls("/v2/bot/message/reply")
                      if call.status == 200)
    pushes = [c for c in fakes.line.calls("/v2/bot/message/push") if c.status == 200]
    assert len(replies) + len(pushes) >= 2 * len(users), "every message answered, the ones during the crash too"
    assert set(replies.values()) == {1}
    with database.session() as s:
        inbound = s.exec(select(Message.text).where(Message.direction == "in")).all()
    assert Counter(inbound) == {"hello": len(users), "1": len(users)}


def _children_by_role(parent: int) -> dict[str, int]:
    """The `mirai dispatch --role R` children of a process, by role."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"dispatch" in command:
            found[command[command.index(b"--role") + 1].decode()] = int(stat.parent.name)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
