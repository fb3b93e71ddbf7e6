"""Engine, sessions and migrations for the snapshot store.

SQLite (the embedded default) or PostgreSQL (``DATABASE_URL``). Migrations are Alembic's; the CLI
runs ``upgrade head`` before any command that touches the store, so a new install needs no extra step.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from worker.errors import ServiceUnavailable, endpoint, service_error
from worker.settings import get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_folder(url: str, path: str) -> None:
    """Create the folder of a SQLite file only inside ``ICP_WORKER_HOME``; elsewhere it must exist."""
    folder = Path(path).expanduser().absolute().parent
    if folder.is_dir():
        return
    home = get_settings().icp_worker_home.expanduser().absolute()
    if folder == home or home in folder.parents:
        folder.mkdir(parents=True, exist_ok=True)
        return
    raise ServiceUnavailable(
        "the store",
        endpoint(url),
        f"folder {folder} does not exist",
        "create it first (only folders inside ICP_WORKER_HOME are created by themselves)",
    )


def _json_dumps(value: Any) -> str:
    """The JSON columns' encoder: orjson, several times faster than ``json`` on the sync's hot path (every
    snapshot's attributes and status, every fit's reasons and owned values). Compact text; keys that are
    not strings are written as strings, as ``json`` does."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


#: JSON codec of every engine (``create_engine`` passes them to the JSON column type).
JSON_CODEC: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout (processes may share it).
    PostgreSQL connects with a bounded timeout (``DB_CONNECT_TIMEOUT_SECONDS``), so nothing hangs."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            _sqlite_folder(url, path)
        engine = create_engine(url, connect_args={"timeout": 30}, **JSON_CODEC)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every SQLite test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        connect_args["connect_timeout"] = max(1, round(get_settings().db_connect_timeout_seconds))
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **JSON_CODEC)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # Alembic's config is ConfigParser-based: escape % in URLs (passwords may hold one).
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> tuple[str | None, str | None]:
    """Bring the store's schema to the newest migration (idempotent): (revision before, revision after);
    before is None on a fresh database. A store that cannot be reached raises ``ServiceUnavailable``."""
    url = engine.url.render_as_string(hide_password=False)
    cfg = alembic_config(url)
    try:
        with engine.begin() as conn:
            before = MigrationContext.configure(conn).get_current_revision()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            after = MigrationContext.configure(conn).get_current_revision()
    except (OperationalError, DBAPIError) as exc:
        if not getattr(exc, "connection_invalidated", False) and _reached(exc):
            raise
        raise service_error("the store", url, exc, "check DATABASE_URL") from None
    return before, after


def _reached(exc: DBAPIError) -> bool:
    """True when the database answered (an SQL error of ours), False when it could not be opened."""
    text = str(exc.orig if exc.orig is not None else exc).casefold()
    markers = ("connection", "connect", "does not exist", "authentication", "timeout", "timed out",
               "unable to open database", "could not translate host", "server closed")  # fmt: skip
    return not any(m in text for m in markers)


class Store:
    """An engine and its session factory."""

    def __init__(self, url: str, *, auto_migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        #: Schema revision before and after the automatic migration (before is None: created now).
        self.migrated: tuple[str | None, str | None] | None = None
        if auto_migrate:
            self.migrated = migrate(self.engine)

    @property
    def threads_share_data(self) -> bool:
        """Whether sessions opened in different threads see the same database: not so for an in-memory
        SQLite store, whose pool gives each thread its own connection, so its own empty database. The
        sync's phases only hand commits to a second thread when this holds."""
        url = self.engine.url
        return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))

    @contextmanager
    def session(self, *, recomputable: bool = False) -> Iterator[Session]:
        """A session that commits on success and rolls back on error.

        ``recomputable``: the transaction holds only what a later run computes again from the store and
        the CRM (a pulled page's snapshots and cursor, a scored batch's fits), nothing the CRM was told.
        On PostgreSQL it then commits without waiting for its WAL to reach the disk
        (``synchronous_commit`` off for this transaction only): each commit of a first sync waited for
        its own flush. A crash of the database server may lose the last such transactions (whole ones,
        never half of one: the next run pulls or scores them again); the next ordinary commit, such as a
        write phase's results, flushes every one before it. SQLite's WAL with ``synchronous=NORMAL``
        already commits this way."""
        with self.sessions() as session:
            try:
                if recomputable and self.engine.dialect.name == "postgresql":
                    session.execute(text("SET LOCAL synchronous_commit TO OFF"))
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


_pid_store: dict[int, Store] = {}


@cache
def _store_for(url: str, pid: int) -> Store:
    return Store(url)


def get_store(url: str | None = None) -> Store:
    """The process's store for ``url`` (default: settings). A forked worker gets its own engine."""
    return _store_for(url or get_settings().store_url(), os.getpid())
