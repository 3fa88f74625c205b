"""The one place that opens the database: engine creation, SQLite pragmas and migrations."""
from __future__ import annotations

import fcntl
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import IO, Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from bot.store import crypto
from bot.store.crypto import KeyRing

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
log = logging.getLogger("mirai.store")


def _ensure_sqlite_folder(url: str) -> None:
    """SQLite creates the file but not its folder (./data on a fresh checkout)."""
    path = crypto.sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str, keyring: KeyRing | None = None) -> Engine:
    """An engine for ``url`` whose encrypted columns use ``keyring`` (default: the one the settings give)."""
    _ensure_sqlite_folder(url)
    if url.startswith("sqlite"):
        # hide_parameters: a database error must not print the values of the statement (user ids, texts) into
        # the log with its traceback.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)
        crypto.attach(engine.dialect, keyring or crypto.keyring_of(None))

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # WAL keeps readers (the web inbox) from blocking the writer; foreign keys are off by default.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # Deleted and overwritten content is zeroed in the file, not left in free pages: an erased
            # worker's identifiers must not survive in the database's bytes.
            cur.execute("PRAGMA secure_delete=ON")
            # SQLite would copy the log into the database inside whichever commit crossed 1,000 pages, while
            # that writer still holds the write lock: webhooks waited 100-200 ms behind it now and then. The
            # copying is done after the lock is released instead (SqliteWriterLock._checkpoint_soon).
            cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()
            # Let us issue BEGIN IMMEDIATE ourselves so one worker's turn holds the write lock from its first read.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn):  # type: ignore[no-untyped-def]
            # A unit of work that only reads (Database.reading) takes no write lock: WAL shows it the last commit.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("only_reads") else "BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    crypto.attach(engine.dialect, keyring or crypto.keyring_of(None))
    return engine


def alembic_config(url: str, keyring: KeyRing | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if keyring is not None:
        cfg.attributes["keyring"] = keyring  # migrations that encrypt rows use the database's own keys
    return cfg


def migrate(url: str, keyring: KeyRing | None = None) -> None:
    """Brings the schema to the newest migration (safe to run at every start, by several processes at once:
    they take turns, and the later ones find nothing left to do)."""
    _ensure_sqlite_folder(url)
    with _migration_lock(url):
        command.upgrade(alembic_config(url, keyring), "head")


def schema_is_current(db: Database) -> bool:
    """True when the database answers and stands at the newest migration this code knows."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(db.url)).get_current_head()
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head


MIGRATION_LOCK_KEY = 7_302


def try_file_lock_beside(url: str, name: str) -> IO[str] | Literal[True] | None:
    """An exclusive lock on ``<database>.<name>.lock`` beside a SQLite file, for one process at a time: the open
    file to keep while it is held (the operating system releases it when the file closes or the process dies),
    None when another process holds it, and True when there is no file to lock beside (in memory)."""
    path = crypto.sqlite_path(url)
    if path is None:
        return True
    handle = open(_lock_file(path, name), "a+")  # noqa: SIM115 (the caller keeps it open while it holds the lock)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def _lock_file(database: Path, name: str) -> str:
    """Where the locks of one SQLite database live: beside it, as <database>.<name>.lock."""
    return f"{database}.{name}.lock"


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their time zone; every one we store is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    if url.startswith("sqlite"):
        path = crypto.sqlite_path(url)
        if path is None:
            yield
            return
        with open(_lock_file(path, "migrate"), "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes or the process dies
            yield
        return
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
            conn.commit()
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
                conn.commit()
    finally:
        engine.dispose()


class WroteBeforeWriting(RuntimeError):
    """A unit of work opened with ``Database.read_then_write`` tried to write before it asked to: nothing was
    written; do the work again in an ordinary ``session``."""


class SqliteWriterLock:
    """Turns at writing one SQLite file: threads queue on a reentrant lock, and processes sharing the file
    (`mirai serve` beside `mirai dispatch`) on an exclusive lock of <database>.writer.lock, which the kernel
    hands to the next waiter the moment it is released. One per file and process, whatever the number of
    Database objects, so that a thread already writing never waits for itself."""

    _by_path: dict[str, SqliteWriterLock] = {}
    _registry_lock = threading.Lock()

    CHECKPOINT_EVERY_SECONDS = 1.0
    # Frames (pages of 4 KB) the write-ahead log may hold before it is started again from its beginning.
    RESTART_LOG_AFTER_FRAMES = 16_384
    RESTART_WAITS_FOR_READERS_MS = 50

    def __init__(self, path: Path | None) -> None:
        self._threads = threading.RLock()
        self._depth = 0
        self._file: IO[str] | None = None
        self._path = path
        self._next_checkpoint = 0.0
        self._checkpointing = False
        if path is not None:
            self._file = open(_lock_file(path, "writer"), "a+")  # noqa: SIM115 (kept for the life of the process)

    @classmethod
    def for_path(cls, path: Path | None) -> SqliteWriterLock:
        if path is None:  # in memory: no other process can open it
            return cls(None)
        with cls._registry_lock:
            key = str(path.resolve())
            if key not in cls._by_path:
                cls._by_path[key] = cls(path)
            return cls._by_path[key]

    def __enter__(self) -> None:
        self._threads.acquire()
        if self._depth == 0 and self._file is not None:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX)
            except BaseException:
                self._threads.release()
                raise
        self._depth += 1

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        released = self._depth == 0 and self._file is not None
        if released:
            fcntl.flock(self._file, fcntl.LOCK_UN)  # type: ignore[arg-type]
        self._threads.release()
        if released:
            self._checkpoint_soon()

    def _checkpoint_soon(self) -> None:
        """After a write, at most once a second: the write-ahead log is copied into the database by a thread
        of its own, in PASSIVE mode, which waits for no reader and no writer (and keeps none waiting)."""
        moment = time.monotonic()
        if self._checkpointing or moment < self._next_checkpoint:
            return
        self._checkpointing, self._next_checkpoint = True, moment + self.CHECKPOINT_EVERY_SECONDS
        threading.Thread(target=self._checkpoint, name="mirai-sqlite-checkpoint", daemon=True).start()

    def _checkpoint(self) -> None:
        try:
            # mode=rw: a database deleted meanwhile (a test's folder) is not created again.
            conn = sqlite3.connect(f"file:{self._path}?mode=rw", uri=True, timeout=30)
            try:
                _, log_frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if log_frames > self.RESTART_LOG_AFTER_FRAMES:
                    # Under steady load some reader always holds an older snapshot (the stepping process reads
                    # while webhooks are written), so the log is never found fully copied and grows without end:
                    # 250 MB in 25 s of bench/webhooks.py, every read slower for it. RESTART waits for the readers
                    # of the moment (milliseconds) and makes the next writer start the log again; writers queue
                    # on the writer lock meanwhile rather than polling SQLite's. A reader that takes longer (a
                    # report) is not waited for: the log is started again at a later try.
                    conn.execute(f"PRAGMA busy_timeout={self.RESTART_WAITS_FOR_READERS_MS}")
                    with self:
                        conn.execute("PRAGMA wal_checkpoint(RESTART)")
            finally:
                conn.close()
        except sqlite3.Error as exc:  # the next write tries again
            log.debug("SQLite checkpoint of %s skipped: %s", self._path, exc)
        finally:
            self._checkpointing = False


class Database:
    def __init__(self, url: str, encryption_keys: str | None = None) -> None:
        """``encryption_keys``: ENCRYPTION_KEYS as configured (None: read the settings). Raises
        ``EncryptionKeyError`` when PostgreSQL is given no key: production never runs unencrypted."""
        self.url = url
        if encryption_keys is None:
            from bot.settings import get_settings

            encryption_keys = get_settings().encryption_keys
        self.keyring = crypto.keyring_for(url, encryption_keys)
        self.engine = make_engine(url, self.keyring)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        # SQLite has one writer at a time and, when busy, its waiters sleep and poll (up to 100 ms a turn):
        # under load that turns into seconds. Writers queue on a lock instead (see SqliteWriterLock).
        self._sqlite_writer = None if self.is_postgres else SqliteWriterLock.for_path(crypto.sqlite_path(url))
        self._reader = self.engine.execution_options(only_reads=True)

    def migrate(self) -> None:
        migrate(self.url, self.keyring)

    @contextmanager
    def _turn(self) -> Iterator[None]:
        if self._sqlite_writer is None:
            yield
            return
        with self._sqlite_writer:
            yield

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed at the end, rolled back whole on any error."""
        with self._turn(), Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read_then_write(self) -> Iterator[tuple[Session, Callable[[], None]]]:
        """A unit of work that reads and decides first, then writes: call the given ``write_now()`` before the
        first write. Committed at the end, rolled back whole on any error.

        On SQLite the reading part takes no write lock (webhooks go on being stored meanwhile); ``write_now()``
        takes it and starts the writing transaction, so whatever was read may have changed by then: the writes
        must check what they depend on (a conversation state's version). A write before ``write_now()`` (an ORM
        flush) raises WroteBeforeWriting and nothing is kept. On PostgreSQL it is an ordinary ``session``."""
        if self._sqlite_writer is None:
            with self.session() as session:
                yield session, lambda: None
            return
        with ExitStack() as writer, Session(self.engine, expire_on_commit=False) as session:
            conn = session.connection(execution_options={"only_reads": True})  # BEGIN, not BEGIN IMMEDIATE
            sqlite_conn = conn.connection.driver_connection
            sqlite_conn.execute("PRAGMA query_only=ON")
            writing = False

            def write_now() -> None:
                nonlocal writing
                if writing:
                    return
                writing = True
                sqlite_conn.execute("PRAGMA query_only=OFF")
                # The reading transaction ends before the writer lock is waited for (whoever holds it may be
                # waiting for readers: SqliteWriterLock._checkpoint), and the writing one begins under it, on
                # the same connection: SQLAlchemy's transaction goes on around both.
                sqlite_conn.execute("COMMIT")
                writer.enter_context(self._turn())
                sqlite_conn.execute("BEGIN IMMEDIATE")

            try:
                yield session, write_now
                if not writing:
                    sqlite_conn.execute("PRAGMA query_only=OFF")
                session.commit()
            except BaseException as exc:
                if not writing:  # before the connection goes back to the pool
                    sqlite_conn.execute("PRAGMA query_only=OFF")
                session.rollback()
                if isinstance(exc, OperationalError) and "readonly" in str(exc.orig):
                    raise WroteBeforeWriting("a write came before write_now()") from exc
                raise

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A unit of work that only reads: on SQLite it waits for no writer and keeps none waiting (the queue
        lookups of the background loops run while webhooks are being stored). Nothing it changes is kept."""
        with Session(self._reader, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """The same for SQL without the ORM (bulk inserts on the webhook path)."""
        with self._turn(), self.engine.begin() as conn:
            yield conn


@lru_cache(maxsize=4)
def get_database(url: str, encryption_keys: str | None = None) -> Database:
    db = Database(url, encryption_keys)
    db.migrate()
    return db
