"""Shared fixtures: the real flow data, a fixed clock, and databases (SQLite and a throwaway PostgreSQL)."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

# Production always runs with a configured key (PostgreSQL refuses to start without one): so do the tests, on
# both databases. The key-less development default has its own tests in tests/privacy/.
TEST_ENCRYPTION_KEY = "n0UJ9l3a0bXxV3QGqvNDi3ELwJ5v2tTTR7RUQ0Cw4xk="
os.environ.setdefault("ENCRYPTION_KEYS", TEST_ENCRYPTION_KEY)
# Apps built by tests do not start a scheduler unless a test asks for one (tests/scheduling, tests/ops): dozens of
# idle schedulers would compete for the CPU and outlive the databases they were given.
os.environ.setdefault("RUN_SCHEDULER_IN_PROCESS", "false")

from bot.flowbook import FlowBook, default_flowbook  # noqa: E402
from tests.pgserver import PostgresServer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def book() -> FlowBook:
    return default_flowbook()


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | None]:
    try:
        server = PostgresServer()
        server.start()
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        if os.getenv("MIRAI_REQUIRE_POSTGRES"):
            raise
        detail = exc.stderr.decode() if isinstance(exc, subprocess.CalledProcessError) and exc.stderr else exc
        yield None
        print(f"PostgreSQL unavailable: {detail}")
        return
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs twice: on SQLite (the default) and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mirai.db'}"
    server = request.getfixturevalue("postgres")
    if server is None:
        pytest.skip("PostgreSQL server binaries are not installed (apt-get install postgresql)")
    return server.create_database()


@pytest.fixture
def database(database_url: str):  # type: ignore[no-untyped-def]
    from bot.store.db import Database

    db = Database(database_url)
    db.migrate()
    yield db
    db.engine.dispose()
