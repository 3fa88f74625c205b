"""Schemathesis against the app's own `/openapi.json`: generated requests (valid and invalid) for every
documented operation, with and without a counsellor's token, and no answer may be a 5xx.

    .venv/bin/python bench/openapi_fuzz.py [--examples 60]

Prints the number of cases run per operation and in total; exits 1 on any server error (with the request).
The suite runs the same check with fewer examples (tests/inbox/test_openapi_fuzz.py)."""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from admin_api.app import create_app  # noqa: E402
from bot.messages import InboundEvent, InboundKind  # noqa: E402
from bot.settings import Settings  # noqa: E402

PASSWORD = "fuzzing password 123"


def fuzz(examples: int, database_url: str | None = None) -> tuple[Counter[str], list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(database_url=database_url or f"sqlite:///{tmp}/fuzz.db",
                                  run_workers_in_process=False))
        ctx = app.state.ctx
        ctx.inbox.add_user("fuzz", "supervisor", PASSWORD)
        token = ctx.inbox.login("fuzz", PASSWORD).token  # type: ignore[union-attr]
        # Something to read, claim and answer: a web chat worker who asked for a person.
        ctx.service.handle("web", "fuzz-worker", InboundEvent(kind=InboundKind.TEXT, text="talk to a person"))
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        cases: Counter[str] = Counter()
        failures: list[str] = []
        for result in schema.get_all_operations():
            operation = result.ok()
            name = f"{operation.method.upper()} {operation.path}"
            if operation.path == "/api/inbox/events":
                continue  # an endless stream: checked by the inbox tests, not by a fuzzer that waits for the end

            @settings(max_examples=examples, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def run(case) -> None:  # type: ignore[no-untyped-def]
                for headers in ({"Authorization": f"Bearer {token}"}, {}):
                    response = case.call(headers=headers)
                    cases[name] += 1
                    if response.status_code >= 500:
                        failures.append(f"{response.status_code} {name}: {case.as_curl_command(headers)}")

            try:
                run()
            except Unsatisfiable:
                cases[name] += 0
            except Exception as exc:  # noqa: BLE001 (an exception escaping the app is a server error too)
                failures.append(f"{name}: {type(exc).__name__}: {exc}"[:500])
        return cases, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=60, help="generated examples per operation")
    args = parser.parse_args()
    cases, failures = fuzz(args.examples)
    for name, count in sorted(cases.items()):
        print(f"  {count:5d}  {name}")
    print(f"{sum(cases.values())} requests over {len(cases)} operations; server errors: {len(failures)}")
    for failure in failures[:20]:
        print("  " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
