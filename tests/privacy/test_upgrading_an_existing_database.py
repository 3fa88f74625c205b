"""A database from before encryption is upgraded in place: migration 0005 encrypts the rows it finds, and the
app reads them as before."""
from __future__ import annotations

import json

from alembic import command
from sqlalchemy import text

from bot.service import ConversationService
from bot.store.db import Database, alembic_config
from tests.privacy.conftest import KEY_A

STORY = "the broker took 800,000 yen and my passport"


def test_rows_written_before_0005_are_encrypted_by_it_and_still_read(database_url, book):
    db = Database(database_url, encryption_keys=KEY_A)
    command.upgrade(alembic_config(database_url, db.keyring), "0003")
    with db.engine.begin() as conn:  # what the code before encryption wrote: plain text and plain JSON
        conn.execute(text("INSERT INTO worker (channel, channel_user_id, language, reachable, opted_out, created_at, "
                          "last_active_at) VALUES ('web', 'web-legacy', 'en', true, false, :t, :t)"),
                     {"t": "2026-01-01 00:00:00"})
        conn.execute(text("INSERT INTO message (worker_id, channel, direction, kind, text, payload, created_at) "
                          "VALUES (1, 'web', 'in', 'text', :text, :payload, :t)"),
                     {"text": STORY, "payload": json.dumps({"kind": "text", "text": STORY}), "t": "2026-01-01 00:00:00"})
        conn.execute(text("INSERT INTO conversation_state (worker_id, state, version, updated_at) "
                          "VALUES (1, :state, 1, :t)"),
                     {"state": json.dumps({"language": "en", "step": "menu", "raw_answers": {"Q12": STORY}}),
                      "t": "2026-01-01 00:00:00"})

    db.migrate()

    with db.engine.connect() as conn:
        stored = conn.execute(text("SELECT text, payload FROM message")).one()
        state = conn.execute(text("SELECT state FROM conversation_state")).scalar_one()
    assert all(STORY not in str(v) for v in (*stored, state)), "nothing is left in plain text"
    history = ConversationService(db, book).history("web", "web-legacy")
    assert history == [{"id": 1, "direction": "in", "text": STORY}]
    db.engine.dispose()
