"""privacy: what workers say is encrypted at rest

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

The columns that can carry a worker's words become Fernet tokens (bot/store/crypto.py): JSON columns turn into
TEXT (on PostgreSQL; SQLite stores text in a JSON-declared column as it is), and every existing row is encrypted
with the first key of ENCRYPTION_KEYS, a batch at a time. Rows already encrypted are left alone, so the migration
can be interrupted and run again.
"""
from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import context, op

from bot.store.crypto import KeyRing, is_token, keyring_of

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

BATCH = 1000

# (table, primary key, column, was JSON before)
ENCRYPTED_COLUMNS: list[tuple[str, str, str, bool]] = [
    ("message", "id", "text", False),
    ("message", "id", "payload", True),
    ("answer", "id", "value", True),
    ("answer", "id", "raw_text", False),
    ("conversation_state", "worker_id", "state", True),
    ("inbound_queue", "id", "event", True),
    ("outbox", "id", "payload", True),
    ("case_note", "id", "text", False),
]


def _keyring() -> KeyRing:
    given = context.config.attributes.get("keyring")
    return given if given is not None else keyring_of(None)


def _convert_rows(table: str, pk: str, column: str, change: Callable[[str], str | None]) -> None:
    """Applies ``change`` to every non-null value of the column, BATCH rows per statement; ``change`` returns
    None for a value that needs nothing."""
    bind = op.get_bind()
    last = None
    while True:
        query = f"SELECT {pk}, {column} FROM {table} WHERE {column} IS NOT NULL"
        params: dict[str, object] = {"n": BATCH}
        if last is not None:
            query += f" AND {pk} > :last"
            params["last"] = last
        rows = bind.execute(sa.text(query + f" ORDER BY {pk} LIMIT :n"), params).all()
        if not rows:
            return
        updates = [{"k": key, "v": new} for key, value in rows if (new := change(str(value))) is not None]
        if updates:
            bind.execute(sa.text(f"UPDATE {table} SET {column} = :v WHERE {pk} = :k"), updates)
        last = rows[-1][0]


def upgrade() -> None:
    keyring = _keyring()
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, pk, column, was_json in ENCRYPTED_COLUMNS:
        if postgres and was_json:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE TEXT USING {column}::text")
        _convert_rows(table, pk, column,
                      lambda value: None if is_token(value) else keyring.encrypt(value))


def downgrade() -> None:
    keyring = _keyring()
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, pk, column, was_json in ENCRYPTED_COLUMNS:
        _convert_rows(table, pk, column,
                      lambda value: keyring.decrypt(value) if is_token(value) else None)
        if postgres and was_json:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE JSON USING {column}::json")
