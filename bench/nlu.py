"""The embedded NLU and a real Rasa 3.6 server side by side, on the same held-out set, in one run.

    .venv/bin/python bench/nlu.py [--test nlu/test] [--rounds 1]

Both go through the same code path the bot uses (`NluService.interpret`): for Rasa that is the HTTP POST to
/model/parse of a server trained from nlu/ (DIET, nlu/config.yml; the model is cached by a hash of nlu/*.yml),
for the embedded one the in-process models. Prints intent accuracy per language, p50/p99 parse time and the
resident memory of each: the Rasa server process's RSS, and for the embedded NLU the RSS increase of loading it
in a fresh Python process (plus that process's total).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nlu.data import LANGUAGES, TEST_DIR, Example, read_examples  # noqa: E402
from nlu.rasa import RasaServer, RasaUnavailableError, rasa_env, train_model  # noqa: E402
from nlu.service import NluService  # noqa: E402

_EMBEDDED_RSS = """
import sys
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1])
sys.path.insert(0, sys.argv[1])
import nlu.service
before = rss()
from nlu.embedded import default_embedded
default_embedded().parse('warm up')
print(before, rss())
"""


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (Rasa may fork helpers), in KiB."""
    total = 0
    pids = [pid]
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    pids += [int(p) for p in children]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def embedded_rss() -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", _EMBEDDED_RSS, str(ROOT)], capture_output=True, text=True,
                         check=True).stdout.split()
    before, after = int(out[0]), int(out[1])
    return after - before, after


def run(service: NluService, examples: list[Example], rounds: int) -> dict[str, object]:
    for e in examples[:20]:  # warm up connections and caches
        service.interpret(e.text)
    ok: dict[str, list[int]] = {lang: [0, 0] for lang in LANGUAGES}
    times: list[float] = []
    backends: dict[str, int] = {}
    for _ in range(rounds):
        for e in examples:
            start = time.perf_counter()
            result = service.interpret(e.text)
            times.append(time.perf_counter() - start)
            backends[result.backend] = backends.get(result.backend, 0) + 1
            if e.lang in ok:
                ok[e.lang][0] += result.intent == e.intent
                ok[e.lang][1] += 1
    times.sort()
    return {"acc": {lang: a / n for lang, (a, n) in ok.items() if n},
            "all": sum(a for a, _ in ok.values()) / max(sum(n for _, n in ok.values()), 1),
            "p50": statistics.median(times), "p99": times[min(len(times) - 1, int(len(times) * 0.99))],
            "backends": backends}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", default=str(TEST_DIR), help="held-out Rasa NLU file or folder")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    examples = read_examples(Path(args.test))
    print(f"held-out set: {len(examples)} messages from {args.test}", flush=True)

    delta, total = embedded_rss()
    embedded = NluService("embedded")
    emb = run(embedded, examples, args.rounds)
    emb["rss"] = f"+{delta / 1024:.0f} MB (process {total / 1024:.0f} MB)"

    ras: dict[str, object] | None = None
    server = None
    try:
        venv = rasa_env()
        model = train_model(venv, log=lambda m: print(m, flush=True))
        print("starting rasa run --enable-api ...", flush=True)
        server = RasaServer(venv, model).start()
        service = NluService("rasa", server.url, timeout=10.0)
        ras = run(service, examples, args.rounds)
        ras["rss"] = f"{rss_kib(server.pid or 0) / 1024:.0f} MB (server process)"
        service.close()
    except (RasaUnavailableError, RuntimeError) as exc:
        print(f"Rasa not measured: {exc}")
    finally:
        if server is not None:
            server.stop()

    def col(r: dict[str, object] | None, fmt) -> str:  # type: ignore[no-untyped-def]
        return fmt(r) if r is not None else "-"

    rows = [("intent accuracy " + lang, lambda r, lang=lang: f"{r['acc'][lang]:.1%}") for lang in LANGUAGES]
    rows += [("intent accuracy all", lambda r: f"{r['all']:.1%}"),
             ("parse p50", lambda r: f"{r['p50'] * 1000:.2f} ms"),
             ("parse p99", lambda r: f"{r['p99'] * 1000:.2f} ms"),
             ("resident memory", lambda r: str(r["rss"])),
             ("answered by", lambda r: ", ".join(f"{k} {v}" for k, v in r["backends"].items()))]
    print()
    print(f"{'':<22} {'embedded':>30} {'rasa (DIET, real server)':>30}")
    for name, fmt in rows:
        print(f"{name:<22} {col(emb, fmt):>30} {col(ras, fmt):>30}")
    if ras is not None:
        worse = [lang for lang in LANGUAGES if emb["acc"][lang] < ras["acc"][lang]]  # type: ignore[index]
        speedup = ras["p99"] / emb["p99"]  # type: ignore[operator]
        print()
        print(f"embedded at least as accurate on every language: {'yes' if not worse else 'no: ' + ', '.join(worse)}")
        print(f"p99 speed-up of embedded over rasa: {speedup:.0f}x (target >= 5x)")
        print(f"embedded resident memory under 300 MB: {'yes' if total / 1024 < 300 else 'no'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    raise SystemExit(main())
