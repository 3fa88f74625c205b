"""How many LINE messages per second `mirai serve` carries end to end, and how fast it acknowledges webhooks.

A lean fake LINE server (bench/fake_line_server.py) and `mirai serve` run as processes of their own on 127.0.0.1.
Signed text webhooks (one event each, from many workers going through the sheet) are posted over loopback:

1. at a steady offered rate (default 500/s) for a few seconds: acknowledgement latency p50/p99 under that
   load, and whether every reply reached the fake server without a backlog;
2. as fast as the client can (closed loop): the sustained end-to-end rate, from the first webhook sent to the
   last reply received (inbound stored, engine step run, reply sent to the fake server).

Each phase also prints the CPU time each process spent per message (ours, PostgreSQL's, the fake server's and
this client's: they all share the machine's cores), which shows where the time goes. The client speaks plain HTTP/1.1 over
keep-alive sockets with every request built before the clock starts, so it takes as little of the machine as it
can (an aiohttp client took 0.4-1 ms of CPU per webhook, as much as a third of what `mirai serve` needs).

    .venv/bin/python bench/webhooks.py                 # SQLite and PostgreSQL (if installed)
    .venv/bin/python bench/webhooks.py --db sqlite --rate 800 --seconds 10
    .venv/bin/python bench/webhooks.py --setup split --seconds 6   # only api + dispatch processes

Setups (--setup, comma-separated; default serve,split):
  serve    `mirai serve` alone, as `make run` starts it: its stepping and sending in two child processes
  split    `mirai serve` with RUN_WORKERS_IN_PROCESS=false beside `mirai dispatch --role steps` and `--role sends`
           (docker-compose.yml's api and worker containers)
  threads  `mirai serve` with PIPELINE_PROCESSES=false: stepping and sending in threads of the one process
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# A throwaway key for the throwaway databases (PostgreSQL refuses to store workers' words without one).
os.environ.setdefault("ENCRYPTION_KEYS", __import__("cryptography.fernet").fernet.Fernet.generate_key().decode())

from tests.fakes.signing import line_text_event, line_webhook  # noqa: E402
from tests.pgserver import PostgresServer, free_port  # noqa: E402

SECRET = "bench-line-channel-secret"
# What workers type while going through onboarding and the sheet: every one makes the engine take a step.
CONVERSATION = ["hello", "2", "agree", "skip", "4", "Aichi", "1 3", "200000 yen", "no", "yes", "no",
                "don't know", "no", "no", "no", "none", "skip", "no", "menu", "1"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree_cpu_seconds(root: int) -> float:
    """CPU time of a process and of its children (PostgreSQL: the postmaster and its backends); children that
    have already exited are counted by the kernel in the parent's cumulative fields."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime
        todo.extend(children.get(pid, []))
    return total


@dataclass
class Phase:
    name: str
    sent: int
    seconds_sending: float
    seconds_end_to_end: float
    acks: list[float]
    errors: int
    cpu_ms_per_message: dict[str, float]

    def report(self) -> str:
        acks = sorted(self.acks)
        p50 = statistics.median(acks) * 1000
        p99 = acks[min(len(acks) - 1, int(len(acks) * 0.99))] * 1000
        return (f"  {self.name:<26} {self.sent:>6} msgs  offered {self.sent / self.seconds_sending:7.0f}/s  "
                f"end-to-end {self.sent / self.seconds_end_to_end:7.0f} msg/s  "
                f"ack p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  max {acks[-1] * 1000:6.1f} ms  errors {self.errors}\n"
                f"  {'':<26} CPU ms per message: "
                + ", ".join(f"{name} {ms:.2f}" for name, ms in self.cpu_ms_per_message.items()))


class Bench:
    def __init__(self, database_url: str, label: str, log_path: str | None = None, setup: str = "serve",
                 postmaster: int | None = None) -> None:
        self.database_url, self.label, self.log_path, self.setup = database_url, label, log_path, setup
        self.postmaster = postmaster
        self.port = free_port()
        self.users = (f"U{n:032x}" for n in itertools.count(1))
        self.process: subprocess.Popen[bytes] | None = None
        self.counter: httpx.Client | None = None

    def __enter__(self) -> Bench:
        self.fake = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fake_line_server.py")],
                                     stdout=subprocess.PIPE, text=True)
        self.fake_url = self.fake.stdout.readline().strip()  # type: ignore[union-attr]
        env = {**os.environ, "DATABASE_URL": self.database_url, "HOST": "127.0.0.1", "PORT": str(self.port),
               "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": "test-line-channel-access-token",
               "LINE_API_BASE_URL": self.fake_url, "TELEGRAM_BOT_TOKEN": "", "MESSENGER_APP_SECRET": "",
               "LOG_LEVEL": "warning"}
        mirai = Path(sys.executable).parent / "mirai"
        subprocess.run([str(mirai), "migrate"], env=env, check=True, capture_output=True)
        self.log = open(self.log_path, "wb") if self.log_path else tempfile.TemporaryFile()
        self.helpers: dict[str, subprocess.Popen[bytes] | int] = {}  # ours to stop, or serve's children (pids)
        env.pop("RUN_WORKERS_IN_PROCESS", None)
        env["PIPELINE_PROCESSES"] = "false" if self.setup == "threads" else "true"
        if self.setup == "split":  # docker-compose.yml's shape: web, stepping and sending as separate services
            env["RUN_WORKERS_IN_PROCESS"] = "false"
            for role in ("steps", "sends"):
                self.helpers[f"dispatch --role {role}"] = subprocess.Popen(
                    [str(mirai), "dispatch", "--role", role], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.process = subprocess.Popen([str(mirai), "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    if self.setup == "serve":  # its children, to count their CPU
                        self.helpers.update(children_of(self.process.pid))
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("mirai serve did not start")

    def __exit__(self, *exc: object) -> None:
        if self.counter is not None:
            self.counter.close()
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
        for helper in self.helpers.values():
            if isinstance(helper, subprocess.Popen):  # serve's own children end with it
                helper.terminate()
                helper.wait(timeout=30)
        self.fake.terminate()
        self.fake.wait(timeout=10)

    def webhooks(self, count: int, workers: int) -> list[bytes | tuple[bytes, dict[str, str]]]:
        """Signed bodies, prepared before the clock starts; each worker walks through CONVERSATION."""
        people = [next(self.users) for _ in range(workers)]
        bodies, tokens = [], {}
        for i in range(count):
            user = people[i % workers]
            text = CONVERSATION[(i // workers) % len(CONVERSATION)]
            token = f"rt-{uuid.uuid4()}"
            tokens.setdefault(user, []).append(token)
            bodies.append(line_webhook([line_text_event(user, text, reply_token=token)], SECRET))
        httpx.post(f"{self.fake_url}/__bench/tokens", json=tokens, timeout=60).raise_for_status()
        return bodies

    def replies(self) -> int:
        # One kept-alive connection: the waiting loop asks 20 times a second, on the CPUs being measured.
        if self.counter is None:
            self.counter = httpx.Client(base_url=self.fake_url, timeout=10)
        return int(self.counter.get("/__bench/count").json()["accepted"])

    def _request(self, body: bytes, headers: dict[str, str]) -> bytes:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return (f"POST /webhooks/line HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{head}"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body

    async def open_loop(self, rate: float, seconds: float, workers: int) -> Phase:
        """Posts at a fixed rate regardless of how fast answers come back (as LINE's platform does)."""
        bodies = self.webhooks(int(rate * seconds), workers)
        return await self._run(f"steady {rate:.0f}/s", bodies, rate=rate)

    async def closed_loop(self, count: int, workers: int, concurrency: int) -> Phase:
        bodies = self.webhooks(count, workers)
        return await self._run(f"flat out, {concurrency} conns", bodies, concurrency=concurrency)

    def _cpu(self) -> dict[str, float]:
        used = {label: cpu_seconds(pid) for label, pid in self._processes().items()}
        if self.postmaster is not None:
            used["PostgreSQL"] = process_tree_cpu_seconds(self.postmaster)
        return used

    def _processes(self) -> dict[str, int]:
        found = {"mirai serve": self.process.pid}  # type: ignore[union-attr]
        found.update({name: getattr(helper, "pid", helper) for name, helper in self.helpers.items()})
        return {**found, "fake LINE": self.fake.pid, "bench client": os.getpid()}

    async def _run(self, name: str, bodies: list, rate: float | None = None, concurrency: int = 64) -> Phase:
        requests = [self._request(body, headers) for body, headers in bodies]
        before = self.replies()
        cpu_before = self._cpu()
        acks: list[float] = []
        pool = KeepAlivePool(self.port, concurrency)

        async def post(request: bytes) -> bool:
            start = time.perf_counter()
            status = await pool.post(request)
            acks.append(time.perf_counter() - start)
            return status == 200

        started = time.perf_counter()
        if rate:
            tasks = []
            for i, request in enumerate(requests):
                delay = started + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(post(request)))
            results = await asyncio.gather(*tasks)
        else:
            queue = iter(requests)
            results = []

            async def lane() -> None:
                for request in queue:
                    results.append(await post(request))

            await asyncio.gather(*(lane() for _ in range(concurrency)))
        sent_for = time.perf_counter() - started
        pool.close()
        deadline = time.monotonic() + 300
        while self.replies() - before < len(bodies) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # each look is a call to the fake server, on the same CPUs
        finished = time.perf_counter() - started
        if self.replies() - before < len(bodies):
            raise RuntimeError(f"only {self.replies() - before} of {len(bodies)} replies arrived")
        cpu = {label: (seconds - cpu_before[label]) * 1000 / len(bodies) for label, seconds in self._cpu().items()}
        return Phase(name, len(bodies), sent_for, finished, acks, sum(not ok for ok in results), cpu)


class KeepAlivePool:
    """At most `limit` keep-alive HTTP/1.1 connections to mirai serve; a request waits for a free one. Answers
    are read by their Content-Length (what uvicorn sends for JSON). A connection left idle for longer than
    uvicorn keeps one open (5 s) is closed rather than reused."""

    MAX_IDLE_SECONDS = 4.0

    def __init__(self, port: int, limit: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.slots = asyncio.Semaphore(limit)
        self.opened: list[asyncio.StreamWriter] = []

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self.idle:
            reader, writer, since = self.idle.pop()
            if time.monotonic() - since < self.MAX_IDLE_SECONDS:
                return reader, writer
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.opened.append(writer)
        return reader, writer

    async def post(self, request: bytes) -> int:
        async with self.slots:
            reader, writer = await self._connection()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            if "content-length" not in fields:
                raise RuntimeError(f"mirai serve answered without a Content-Length: {lines}")
            await reader.readexactly(int(fields["content-length"]))
            if fields.get("connection", "").lower() == "close":
                writer.close()
            else:
                self.idle.append((reader, writer, time.monotonic()))
            return status

    def close(self) -> None:
        for writer in self.opened:
            writer.close()


SETUPS = {
    "serve": "mirai serve as make run starts it (stepping and sending in 2 child processes)",
    "split": "mirai serve + mirai dispatch --role steps + --role sends (3 services, as docker-compose.yml)",
    "threads": "mirai serve with PIPELINE_PROCESSES=false (stepping and sending in threads: 1 process)",
}


def children_of(parent: int) -> dict[str, int]:
    """`mirai serve`'s worker processes, named as the split setup names its separate ones."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes().decode().split("\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and "--role" in command:
            found[f"dispatch --role {command[command.index('--role') + 1]}"] = int(stat.parent.name)
    return found


async def run_one(database_url: str, label: str, args: argparse.Namespace, setup: str,
                  postmaster: int | None) -> None:
    log = f"{args.log}.{label.split()[0].lower()}.{setup}" if args.log else None
    with Bench(database_url, label, log, setup, postmaster) as bench:
        await bench.closed_loop(200, 50, 8)  # warm-up: imports, connections, caches
        steady = await bench.open_loop(args.rate, args.seconds, args.workers)
        flat = await bench.closed_loop(int(args.rate * args.seconds), args.workers, args.concurrency)
    print(f"{label}, {SETUPS[setup]}:")
    print(steady.report())
    print(flat.report(), flush=True)


async def run_both(database_url: str, label: str, args: argparse.Namespace, postmaster: int | None = None) -> None:
    for setup in args.setup.split(","):
        await run_one(database_url, label, args, setup, postmaster)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rate", type=float, default=500.0, help="offered webhooks per second in the steady phase")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=500, help="distinct LINE users sending")
    parser.add_argument("--concurrency", type=int, default=32, help="connections in the flat-out phase")
    parser.add_argument("--setup", default="serve,split", help=f"comma-separated, of: {', '.join(SETUPS)}")
    parser.add_argument("--log", help="keep the output of mirai serve in FILE.<db>")
    args = parser.parse_args()
    if unknown := set(args.setup.split(",")) - set(SETUPS):
        parser.error(f"unknown setup {', '.join(sorted(unknown))}; choose from {', '.join(SETUPS)}")
    print(f"bench/webhooks.py on {os.cpu_count()} CPUs: signed LINE text webhooks -> mirai serve -> fake LINE")
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(run_both(f"sqlite:///{tmp}/bench.db", "SQLite (WAL, synchronous=NORMAL)", args))
    if args.db in ("postgresql", "both"):
        try:
            server = PostgresServer(durable=True)
            server.start()
        except (FileNotFoundError, subprocess.CalledProcessError) as exc:
            print(f"PostgreSQL: skipped ({exc})")
            return
        try:
            postmaster = int((server.dir / "data" / "postmaster.pid").read_text().split()[0])
            asyncio.run(run_both(server.url(), "PostgreSQL (fsync on)", args, postmaster))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
