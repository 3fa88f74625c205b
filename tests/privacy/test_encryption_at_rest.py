"""What a worker tells the bot is stored encrypted: a copy of the database file shows none of it, while the
worker and the counsellors still read it; keys can be replaced without losing a word."""
from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys

import pytest
from sqlalchemy import text

from bot.privacy import rotate_keys
from bot.service import ConversationService
from cryptography.fernet import Fernet

from bot.store.crypto import GCM_PREFIX, TOKEN_PREFIX, EncryptionKeyError
from bot.store.db import Database
from tests.conftest import ROOT
from tests.privacy.conftest import KEY_A, KEY_B, Clock, ServiceWorker, raw_database_bytes

PASSPORT = "my passport was taken by Tanaka-san"
DORM = "the dormitory fee is taken from my salary by Suzuki"


def open_database(url: str, keys: str) -> Database:
    db = Database(url, encryption_keys=keys)
    db.migrate()
    return db


def test_a_free_text_answer_is_not_in_the_database_file_but_the_app_shows_it(tmp_path, book):
    db = open_database(f"sqlite:///{tmp_path / 'mirai.db'}", KEY_A)
    service = ConversationService(db, book, clock=Clock())
    worker = ServiceWorker(service, "web-7f3a")
    worker.follow("en")
    worker.sheet_with_free_text(book, PASSPORT)
    worker.say(DORM)  # and something in their own words at the menu

    shown = [m.get("text") for m in service.history("web", "web-7f3a")]
    assert PASSPORT in shown and DORM in shown, "the worker's own conversation still reads back"

    stored = raw_database_bytes(db)
    for secret in (PASSPORT, DORM, "Tanaka", "Suzuki", "dormitory"):
        assert secret.encode() not in stored, f"{secret!r} is readable in the database file"

    # What is there instead: AES-GCM tokens, in every column that can hold the worker's words.
    with sqlite3.connect(tmp_path / "mirai.db") as plain:
        message = plain.execute("SELECT text, payload FROM message WHERE direction = 'in' ORDER BY id DESC").fetchone()
        answer = plain.execute("SELECT value, raw_text FROM answer WHERE question_id = 'Q12'").fetchone()
        state = plain.execute("SELECT state FROM conversation_state").fetchone()
    assert all(v.startswith(GCM_PREFIX) for v in (*message, *answer, *state))
    assert len(set(message)) == 2, "each value has its own nonce"


def test_a_database_written_by_the_fernet_version_still_reads_and_rotation_rewrites_it(tmp_path, book):
    """Before AES-GCM, values were Fernet tokens: a server upgraded in place still shows those conversations,
    and `mirai keys rotate` leaves no Fernet token behind."""
    url = f"sqlite:///{tmp_path / 'mirai.db'}"
    db = open_database(url, KEY_A)
    service = ConversationService(db, book, clock=Clock())
    ServiceWorker(service, "web-old").follow("en")
    ServiceWorker(service, "web-old").say(PASSPORT)
    old = Fernet(KEY_A)
    with db.session() as s:  # what the earlier version wrote: the same values as Fernet tokens
        for table, column in (("message", "text"), ("message", "payload"), ("conversation_state", "state")):
            rows = s.execute(text(f"SELECT rowid, {column} FROM {table} WHERE {column} IS NOT NULL")).all()
            for row_id, value in rows:
                plain = db.keyring.decrypt(value)
                s.execute(text(f"UPDATE {table} SET {column} = :v WHERE rowid = :i"),
                          {"v": old.encrypt(plain.encode()).decode(), "i": row_id})
    with sqlite3.connect(tmp_path / "mirai.db") as plain_db:
        assert plain_db.execute("SELECT text FROM message WHERE direction = 'in' ORDER BY id DESC").fetchone()[0] \
            .startswith(TOKEN_PREFIX)
    assert PASSPORT in [m.get("text") for m in ConversationService(db, book).history("web", "web-old")]

    rewritten = rotate_keys(db)
    assert rewritten["message.text"] >= 2 and rewritten["conversation_state.state"] == 1
    with sqlite3.connect(tmp_path / "mirai.db") as plain_db:
        values = [v for (v,) in plain_db.execute("SELECT text FROM message UNION ALL SELECT state FROM conversation_state")]
    assert values and all(v.startswith(GCM_PREFIX) for v in values)
    assert PASSPORT in [m.get("text") for m in ConversationService(db, book).history("web", "web-old")]


def test_the_inbox_transcript_shows_decrypted_text_on_both_databases(database, book):
    service = ConversationService(database, book, clock=Clock())
    worker = ServiceWorker(service, "web-9c1d")
    worker.follow("en")
    worker.sheet_with_free_text(book, PASSPORT, talk_to_counsellor=True)
    with database.session() as s:
        raw = s.execute(text("SELECT raw_text FROM answer WHERE question_id = 'Q12'")).scalar_one()
        state = s.execute(text("SELECT state FROM conversation_state")).scalar_one()
    assert PASSPORT not in raw and PASSPORT not in str(state)

    from bot.inbox import InboxService
    from bot.translation import Translator

    inbox = InboxService(database, book, Translator("none"), None, Clock())
    counsellor = inbox.add_user("sato", "counsellor", "correct horse battery", "en")
    (case,) = inbox.conversations(counsellor)
    transcript = inbox.conversation(case["id"], counsellor)["transcript"]
    assert PASSPORT in [m["text"] for m in transcript]


def test_data_written_with_key_a_reads_with_key_b_alone_after_rotation(database_url, book):
    db = open_database(database_url, KEY_A)
    service = ConversationService(db, book, clock=Clock())
    ServiceWorker(service, "web-rot").follow("en")
    ServiceWorker(service, "web-rot").say(PASSPORT)
    db.engine.dispose()

    both = open_database(database_url, f"{KEY_B},{KEY_A}")  # the new key first: it encrypts from now on
    first = rotate_keys(both, batch=2)  # small batches: the loop over batches is exercised too
    assert first["message.text"] >= 2 and first["conversation_state.state"] == 1
    assert sum(rotate_keys(both).values()) == 0, "a second rotation has nothing left to do"
    both.engine.dispose()

    only_b = open_database(database_url, KEY_B)
    history = ConversationService(only_b, book).history("web", "web-rot")
    assert PASSPORT in [m.get("text") for m in history]
    only_b.engine.dispose()

    only_a = Database(database_url, encryption_keys=KEY_A)
    with pytest.raises(EncryptionKeyError, match="cannot be decrypted"):
        ConversationService(only_a, book).history("web", "web-rot")
    only_a.engine.dispose()


def test_without_a_key_sqlite_makes_a_private_development_key_once(tmp_path, book):
    url = f"sqlite:///{tmp_path / 'data' / 'mirai.db'}"
    db = open_database(url, "")
    key_file = tmp_path / "data" / "mirai.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    ServiceWorker(ConversationService(db, book), "web-dev").say(PASSPORT)
    db.engine.dispose()

    again = open_database(url, "")  # a restart reads the same key
    assert PASSPORT in [m.get("text") for m in ConversationService(again, book).history("web", "web-dev")]
    assert PASSPORT.encode() not in raw_database_bytes(again)


def test_postgresql_refuses_to_start_without_a_key_and_doctor_says_why():
    with pytest.raises(EncryptionKeyError, match="ENCRYPTION_KEYS is not set"):
        Database("postgresql+psycopg://mirai@127.0.0.1:1/mirai", encryption_keys="")
    env = {**os.environ, "ENCRYPTION_KEYS": "", "DATABASE_URL": "postgresql+psycopg://mirai@127.0.0.1:1/mirai"}
    doctor = subprocess.run([sys.executable, "-m", "bot.cli", "doctor"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert doctor.returncode == 1
    assert "BAD  encryption: ENCRYPTION_KEYS is not set" in doctor.stdout


def test_a_mistyped_key_is_named():
    with pytest.raises(EncryptionKeyError, match="key number 2 is not a Fernet key"):
        Database("sqlite://", encryption_keys=f"{KEY_A},not-a-key")


def test_keys_new_prints_a_key_that_works():
    made = subprocess.run([sys.executable, "-m", "bot.cli", "keys", "new"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True).stdout.strip()
    db = Database("sqlite://", encryption_keys=made)
    assert db.keyring.decrypt(db.keyring.encrypt(PASSPORT)) == PASSPORT
