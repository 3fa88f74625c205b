"""Dispatch throughput with 1, 2 and 4 `mirai dispatch` processes sharing one outbox, against an instant fake
LINE server (bench/fake_line_server.py, its own process) on 127.0.0.1.

    .venv/bin/python bench/scale.py [--messages 20000] [--workers 2000] [--db postgresql|sqlite]

For each process count: the outbox is filled with LINE pushes for many workers, the dispatchers start together
and the clock stops when the last one exits (`--until-empty`). Prints messages per second, the speed-up over one
process, and the pushes the fake accepted (which must equal the messages: none lost, none twice).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# A throwaway key for the throwaway databases (PostgreSQL refuses to store workers' words without one).
os.environ.setdefault("ENCRYPTION_KEYS", __import__("cryptography.fernet").fernet.Fernet.generate_key().decode())

from bot.store.db import Database  # noqa: E402
from bot.store.models import OutboxMessage, Worker  # noqa: E402
from tests.pgserver import PostgresServer  # noqa: E402


def fill(db: Database, messages: int, workers: int) -> None:
    now = datetime.now(UTC)
    with db.transaction() as conn:
        ids = [conn.execute(insert(Worker.__table__).returning(Worker.__table__.c.id), [{  # type: ignore[attr-defined]
            "channel": "line", "channel_user_id": f"U{uuid.uuid4().hex}", "language": "en", "reachable": True,
            "opted_out": False, "created_at": now, "last_active_at": now}]).scalar() for _ in range(workers)]
        rows = [{"worker_id": ids[i % workers], "channel": "line", "recipient": f"U{i % workers:032x}",
                 "payload": {"messages": [{"type": "text", "text": f"message {i}"}]}, "source": "bot",
                 "idempotency_key": str(uuid.uuid4()), "status": "pending", "attempts": 0, "next_attempt_at": now,
                 "created_at": now, "reply_token": None, "reply_token_expires_at": None, "last_error": None,
                 "sent_at": None} for i in range(messages)]
        conn.execute(insert(OutboxMessage.__table__), rows)  # type: ignore[arg-type]


def run(database_url: str, processes: int, messages: int, workers: int, fake_url: str) -> tuple[float, int]:
    db = Database(database_url)
    db.migrate()
    fill(db, messages, workers)
    db.engine.dispose()
    before = httpx.get(f"{fake_url}/__bench/count").json()["accepted"]
    env = {**os.environ, "DATABASE_URL": database_url, "LINE_CHANNEL_SECRET": "bench",
           "LINE_CHANNEL_ACCESS_TOKEN": "test-line-channel-access-token", "LINE_API_BASE_URL": fake_url,
           "TELEGRAM_BOT_TOKEN": "", "MESSENGER_APP_SECRET": "", "LOG_LEVEL": "WARNING", "QUIET_HOURS": ""}
    mirai = str(Path(sys.executable).parent / "mirai")
    started = time.perf_counter()
    senders = [subprocess.Popen([mirai, "dispatch", "--until-empty"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for _ in range(processes)]
    for sender in senders:
        sender.wait()
    took = time.perf_counter() - started
    return took, httpx.get(f"{fake_url}/__bench/count").json()["accepted"] - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2_000)
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args()
    fake = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fake_line_server.py")], stdout=subprocess.PIPE,
                            text=True)
    fake_url = fake.stdout.readline().strip()  # type: ignore[union-attr]
    server = None
    print(f"bench/scale.py on {os.cpu_count()} CPUs: {args.messages} LINE pushes for {args.workers} workers, "
          f"{args.db}, instant fake LINE")
    try:
        first = None
        for processes in (1, 2, 4):
            if args.db == "postgresql":
                server = PostgresServer(durable=True)
                server.start()
                url = server.url()
            else:
                tmp = tempfile.mkdtemp()
                url = f"sqlite:///{tmp}/scale.db"
            took, accepted = run(url, processes, args.messages, args.workers, fake_url)
            rate = args.messages / took
            first = first or rate
            print(f"  {processes} dispatcher(s): {rate:7.0f} msg/s  ({rate / first:.2f}x)  {took:6.1f} s  "
                  f"pushes accepted {accepted}/{args.messages}", flush=True)
            if server is not None:
                server.stop()
                server = None
    finally:
        if server is not None:
            server.stop()
        fake.terminate()


if __name__ == "__main__":
    main()
