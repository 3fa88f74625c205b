"""Encryption at rest of what workers tell us (message bodies, answers, notes, raw webhook events).

Columns declared as ``EncryptedText`` or ``EncryptedJSON`` hold tokens of AES-256-GCM (authenticated encryption,
a random 96-bit nonce each, as ``mg1.`` + URL-safe base64 text): a copy of the database file or a backup shows
nothing a worker said. Values written before are Fernet tokens (AES-128-CBC + HMAC-SHA256); they are still read,
and `mirai keys rotate` rewrites them. GCM because a busy server encrypts several values per message: Fernet took
about 30 microseconds a value in Python, GCM takes under 5. Repositories and
callers read and write plain strings and dicts; the conversion happens where SQLAlchemy binds and loads values.

Keys come from ``ENCRYPTION_KEYS`` (comma-separated Fernet keys; the GCM key of each is derived from it with
HKDF-SHA256, so that one secret never serves two ciphers directly): the first encrypts, all of them decrypt, so a
new key is put first, ``mirai keys rotate`` re-encrypts every row with it, and only then the old one is dropped.
With no key set, a SQLite database (development) gets a key generated once into a file beside it; PostgreSQL
(production) refuses to start, because a generated key on one server's disk would be lost with that server.
"""
from __future__ import annotations

import base64
import logging
import os
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Dialect, Text
from sqlalchemy.types import TypeDecorator

log = logging.getLogger("mirai.crypto")

# Every Fernet token starts with its version byte 0x80, which is "gAAAAA" in base64: what does not start so
# was written before encryption existed (a row the 0005 migration has not reached yet) and is read as it is.
TOKEN_PREFIX = "gAAAAA"
GCM_PREFIX = "mg1."
_GCM_INFO = b"mirai encryption at rest: AES-256-GCM v1"


def is_token(stored: str) -> bool:
    """True for an encrypted value (either format); False for plain text written before encryption."""
    return stored.startswith(GCM_PREFIX) or stored.startswith(TOKEN_PREFIX)


def _gcm_key(fernet_key: str) -> AESGCM:
    raw = base64.urlsafe_b64decode(fernet_key.encode("ascii"))
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_GCM_INFO).derive(raw))


class EncryptionKeyError(RuntimeError):
    """No usable key: the message says, in plain words, what to set."""


class KeyRing:
    """The configured keys: the first encrypts, every one of them decrypts."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise EncryptionKeyError("at least one key is needed")
        self.keys = keys
        self._fernets = MultiFernet([Fernet(k) for k in keys])  # reads values written before GCM
        self._gcms = [_gcm_key(k) for k in keys]

    def encrypt(self, text: str) -> str:
        nonce = os.urandom(12)
        sealed = self._gcms[0].encrypt(nonce, text.encode("utf-8"), None)
        return GCM_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, stored: str) -> str:
        if stored.startswith(GCM_PREFIX):
            found = self._open_gcm(stored)
            if found is not None:
                return found[0]
        elif stored.startswith(TOKEN_PREFIX):
            try:
                return self._fernets.decrypt(stored.encode("ascii")).decode("utf-8")
            except InvalidToken:
                pass
        else:
            return stored  # written before encryption: plain text
        raise EncryptionKeyError(
            "a stored value cannot be decrypted with any key in ENCRYPTION_KEYS: the key that wrote it is "
            "missing (put the old key back after the new one, run `mirai keys rotate`, then drop it)")

    def _open_gcm(self, stored: str) -> tuple[str, int] | None:
        """The plain text and the position of the key that opened it, or None."""
        try:
            raw = base64.urlsafe_b64decode(stored[len(GCM_PREFIX):].encode("ascii"))
        except ValueError:
            return None
        for position, gcm in enumerate(self._gcms):
            try:
                return gcm.decrypt(raw[:12], raw[12:], None).decode("utf-8"), position
            except InvalidTag:
                continue
        return None

    def is_current(self, stored: str) -> bool:
        """True when the value is already encrypted the current way, with the first key (rotation leaves it)."""
        if not stored.startswith(GCM_PREFIX):
            return False
        found = self._open_gcm(stored)
        return found is not None and found[1] == 0

    def reencrypt(self, stored: str) -> str:
        """The same value, encrypted with the first key (plain text from before encryption, and Fernet tokens,
        included)."""
        return self.encrypt(self.decrypt(stored))


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


def parse_keys(configured: str) -> list[str]:
    """The keys of ENCRYPTION_KEYS, checked one by one so a typo is named rather than failing at first use."""
    keys = [k.strip() for k in configured.split(",") if k.strip()]
    for position, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise EncryptionKeyError(f"ENCRYPTION_KEYS: key number {position} is not a Fernet key (44 characters of "
                                     "URL-safe base64; make one with `mirai keys new`)") from None
    return keys


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite database, None when it lives in memory (``sqlite://``, ``sqlite:///:memory:``) or is
    no SQLite database at all."""
    if not url.startswith("sqlite"):
        return None
    _, separator, path = url.partition(":///")
    path = path.split("?", 1)[0]
    return Path(path) if separator and path and path != ":memory:" else None


def key_file_for(url: str) -> Path | None:
    """Where a development key lives: beside the SQLite file (data/mirai.db -> data/mirai.db.key)."""
    path = sqlite_path(url)
    return path.with_name(path.name + ".key") if path else None


_warned: set[str] = set()


def keyring_for(url: str, configured: str) -> KeyRing:
    """The key ring a database at ``url`` is read and written with."""
    keys = parse_keys(configured)
    if keys:
        return KeyRing(keys)
    if not url.startswith("sqlite"):
        raise EncryptionKeyError(
            "ENCRYPTION_KEYS is not set. Workers' messages are stored encrypted, and on PostgreSQL the key must "
            "come from the environment (a secret store), not from a file on one server: make one with "
            "`mirai keys new`, keep a copy in a safe place, and set ENCRYPTION_KEYS to it.")
    key_file = key_file_for(url)
    if key_file is None:  # an in-memory database lives as long as the process: so may its key
        return KeyRing([new_key()])
    key = _read_or_create_key_file(key_file)
    if str(key_file) not in _warned:
        _warned.add(str(key_file))
        log.warning("ENCRYPTION_KEYS is not set: using the development key in %s (fine for a laptop; in "
                    "production set ENCRYPTION_KEYS, see docs/operations.md)", key_file)
    return KeyRing([key])


def _read_or_create_key_file(key_file: Path) -> str:
    key_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once cannot both write a key; the loser reads the winner's.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            key = key_file.read_text().strip()
            if key:
                return parse_keys(key)[0]
            import time

            time.sleep(0.01)  # the other process is between creating and writing it
        raise EncryptionKeyError(f"the development key file {key_file} is empty: delete it only if the "
                                 "database beside it is empty too") from None
    key = new_key()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    log.warning("generated a development encryption key in %s (mode 0600); without it the database beside it "
                "cannot be read", key_file)
    return key


# ----- the column types ----------------------------------------------------------------------------------------
# Each engine carries the key ring of its database (``attach``), so that two databases with different keys can
# be open in one process (tests, a copy being migrated); code that builds an engine of its own falls back to the
# process's default, resolved from the settings.
_DIALECT_ATTRIBUTE = "mirai_keyring"
_default: KeyRing | None = None


def attach(dialect: Dialect, keyring: KeyRing) -> None:
    setattr(dialect, _DIALECT_ATTRIBUTE, keyring)


def keyring_of(dialect: Dialect | None) -> KeyRing:
    found = getattr(dialect, _DIALECT_ATTRIBUTE, None) if dialect is not None else None
    if found is not None:
        return found
    global _default
    if _default is None:
        from bot.settings import get_settings

        settings = get_settings()
        _default = keyring_for(settings.database_url, settings.encryption_keys)
    return _default


class EncryptedText(TypeDecorator[str]):
    """A string stored encrypted (a token of the key ring)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else keyring_of(dialect).encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else keyring_of(dialect).decrypt(value)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON value (dict, list, string, number) stored as a token of its JSON text."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        # orjson: json.dumps took a tenth of a conversation step's CPU (a state, a log entry and a reply each
        # turn), orjson a tenth of that; both write the same compact UTF-8 JSON.
        return keyring_of(dialect).encrypt(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode("utf-8"))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):  # a JSON column not converted yet (PostgreSQL before 0005)
            return value
        return orjson.loads(keyring_of(dialect).decrypt(value))
