"""A national campaign: how long selecting and enqueueing 100,000 recipients takes, and how fast the dispatcher
delivers them to an instant fake LINE on 127.0.0.1 (multicast batches of 500), with the provider calls made.

Targets (issue 6): enqueue under 10 s, dispatch at least 2,000 messages/s. Optionally `--kills N` kills a
`mirai dispatch` process N times during the campaign and checks, from the fake's own count, that nobody got
the message twice and nobody was missed.

    .venv/bin/python bench/broadcast.py                       # SQLite and PostgreSQL, 100,000 recipients
    .venv/bin/python bench/broadcast.py --db postgresql --recipients 20000 --kills 10 --multicast-rate 20
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# A throwaway key for the throwaway databases (PostgreSQL refuses to store workers' words without one).
os.environ.setdefault("ENCRYPTION_KEYS", __import__("cryptography.fernet").fernet.Fernet.generate_key().decode())

from bot.campaigns import Audience, CampaignService  # noqa: E402
from bot.channels.registry import build_channels  # noqa: E402
from bot.flowbook import LANGUAGES  # noqa: E402
from bot.outbox import Dispatcher, Outbox  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store.db import Database  # noqa: E402
from bot.store.models import OutboxMessage, Worker  # noqa: E402
from tests.pgserver import PostgresServer  # noqa: E402

ACCESS_TOKEN = "test-line-channel-access-token"
MIRAI = str(Path(sys.executable).parent / "mirai")
TEXTS = {lang: f"[{lang}] December is human rights month: consultations are free, in your language."
         for lang in LANGUAGES}


def populate(db: Database, count: int) -> None:
    """Workers as onboarding leaves them (consented, reachable), in the 9 languages, on LINE."""
    now = datetime.now(UTC) - timedelta(days=1)
    languages = list(LANGUAGES)
    with db.session() as s:
        for start in range(0, count, 20_000):
            s.execute(insert(Worker.__table__), [
                dict(channel="line", channel_user_id=f"U{n:032x}", language=languages[n % 9], consent=True,
                     consent_at=now, reachable=True, opted_out=False, created_at=now, last_active_at=now,
                     last_inbound_at=now, prefecture=f"{n % 47 + 1:02d}")
                for n in range(start, min(count, start + 20_000))])
        s.commit()


def fake_line() -> tuple[subprocess.Popen[bytes], str]:
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fake_line_server.py")], stdout=subprocess.PIPE)
    assert process.stdout is not None
    url = process.stdout.readline().decode().strip()
    for _ in range(100):
        try:
            httpx.get(f"{url}/__bench/count", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return process, url


def settings_for(database_url: str, line_url: str, multicast_rate: float) -> Settings:
    return Settings(database_url=database_url, line_channel_secret="bench-secret", line_channel_access_token=ACCESS_TOKEN,
                    line_api_base_url=line_url, telegram_bot_token="", messenger_app_secret="", quiet_hours="",
                    line_multicast_rate_per_second=multicast_rate, outbox_retry_base_seconds=0.05)


def run(database_url: str, label: str, args: argparse.Namespace) -> None:
    process, line_url = fake_line()
    try:
        settings = settings_for(database_url, line_url, args.multicast_rate)
        db = Database(database_url)
        db.migrate()
        populate(db, args.recipients)
        channels = {n: c for n, c in build_channels(settings).items() if c.enabled()}
        campaigns = CampaignService(db, Outbox(channels), settings, lambda: datetime.now(UTC))

        started = time.perf_counter()
        campaign = campaigns.create("bench", TEXTS, Audience(), None, None)
        queued = campaigns.enqueue(campaign.id)
        enqueue_seconds = time.perf_counter() - started
        print(f"  {label}: selected and enqueued {queued:,} recipients in {enqueue_seconds:.2f} s "
              f"(target < 10 s)", flush=True)

        started = time.perf_counter()
        if args.kills:
            kill_dispatchers(database_url, line_url, args)
        else:
            asyncio.run(dispatch_all(db, channels, settings))
        seconds = time.perf_counter() - started
        figures = httpx.get(f"{line_url}/__bench/count").json()
        with db.session() as s:
            by_status = dict(s.execute(select(OutboxMessage.status, func.count()).group_by(  # type: ignore[call-overload]
                OutboxMessage.status)).all())
        missing = args.recipients - figures["multicast_recipients"]
        rate = (f"with {args.kills} kills and restarts (not a rate)" if args.kills else
                f"= {figures['accepted'] / seconds:,.0f} messages/s (target >= 2,000)")
        print(f"  {label}: dispatched in {seconds:.2f} s {rate}; provider calls {figures['calls']:,} for {figures['accepted']:,} deliveries; "
              f"rows {by_status}", flush=True)
        print(f"  {label}: recipients reached {figures['multicast_recipients']:,}, missed {missing:,}, "
              f"received twice {figures['duplicated']:,}", flush=True)
        db.engine.dispose()
    finally:
        process.terminate()
        process.wait()


async def dispatch_all(db: Database, channels: dict, settings: Settings) -> None:  # type: ignore[type-arg]
    dispatcher = Dispatcher(db, channels, settings, lambda: datetime.now(UTC))
    try:
        while await dispatcher.run_once() or dispatcher.pending_count():
            pass
    finally:
        await dispatcher.close()


def kill_dispatchers(database_url: str, line_url: str, args: argparse.Namespace) -> None:
    """`mirai dispatch` killed with SIGKILL `kills` times at random moments while it sends, then run to the end."""
    env = {**os.environ, "DATABASE_URL": database_url, "LINE_CHANNEL_SECRET": "bench-secret",
           "LINE_CHANNEL_ACCESS_TOKEN": ACCESS_TOKEN, "LINE_API_BASE_URL": line_url, "TELEGRAM_BOT_TOKEN": "",
           "MESSENGER_APP_SECRET": "", "QUIET_HOURS": "", "LINE_MULTICAST_RATE_PER_SECOND": str(args.multicast_rate),
           "LOG_LEVEL": "warning"}
    rng = random.Random(args.seed)
    for _ in range(args.kills):
        before = httpx.get(f"{line_url}/__bench/count").json()["calls"]
        process = subprocess.Popen([MIRAI, "dispatch"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while httpx.get(f"{line_url}/__bench/count").json()["calls"] == before and time.monotonic() < deadline:
            time.sleep(0.01)  # it is sending now
        time.sleep(rng.uniform(0.0, 0.4))
        process.kill()
        process.wait()
    subprocess.run([MIRAI, "dispatch", "--until-empty"], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--multicast-rate", type=float, default=200.0,
                        help="multicast calls a second (LINE allows 200)")
    parser.add_argument("--kills", type=int, default=0, help="kill `mirai dispatch` this many times while it sends")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"bench/broadcast.py on {os.cpu_count()} CPUs: a campaign to {args.recipients:,} LINE workers in 9 "
          f"languages, fake LINE on 127.0.0.1", flush=True)
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            run(f"sqlite:///{tmp}/bench.db", "SQLite", args)
    if args.db in ("postgresql", "both"):
        server = PostgresServer(durable=True)
        server.start()
        try:
            run(server.url(), "PostgreSQL", args)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
