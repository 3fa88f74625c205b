"""Several processes starting at once on a new database (an api and its dispatchers) all come up: one applies
the migrations while the others wait, and nobody finds half a schema."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, inspect


def test_four_processes_migrating_a_new_database_at_once_all_succeed(database_url, tmp_path):
    env = {**os.environ, "DATABASE_URL": database_url}
    mirai = str(Path(sys.executable).parent / "mirai")
    runs = [subprocess.Popen([mirai, "migrate"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT) for _ in range(4)]
    outputs = [(run.wait(timeout=120), run.stdout.read().decode()) for run in runs]  # type: ignore[union-attr]
    assert [code for code, _ in outputs] == [0, 0, 0, 0], outputs
    engine = create_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"worker", "message", "outbox", "staff_user", "audit_log"} <= tables
