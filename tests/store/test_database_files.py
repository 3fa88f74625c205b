"""Where a SQLite database keeps its files: a database on disk gets its folder, key and lock files beside it, and
one in memory leaves nothing anywhere (an operator's working folder stays clean)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.store.db import Database


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite+pysqlite://"])
def test_a_database_in_memory_leaves_no_file_in_the_working_folder(url: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = Database(url, encryption_keys="")
    with db.session() as session:
        assert session.execute(text("SELECT 1")).scalar() == 1
    assert os.listdir(tmp_path) == []


def test_a_database_on_disk_gets_its_folder_and_keeps_its_files_beside_it(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = Database(f"sqlite:///{tmp_path}/data/mirai.db?timeout=5", encryption_keys="")
    with db.session() as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
    assert sorted(os.listdir(tmp_path)) == ["data"]
    beside = sorted(os.listdir(tmp_path / "data"))
    assert "mirai.db" in beside and "mirai.db.writer.lock" in beside
    assert all(name.startswith("mirai.db") for name in beside)
