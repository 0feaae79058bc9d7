"""Connecting to Chroma: an embedded folder (`--db`) or a server (`--chroma-url`).

Only this module knows how a location is spelled and how a client is made;
everything above it gets a client and the location's one printable name.
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.parse
from urllib.parse import urlparse

from .errors import DamagedIndexError, IndexNotFoundError, ScenegrepError

OPEN_ATTEMPTS = 3
"""Tries to open an embedded folder. Two processes opening a brand-new folder at
once (an `index` creating it, a `search` or `info` started that instant) can
both run Chroma's schema setup, and one fails ("table ... already exists");
a moment later the schema is complete and opening succeeds."""

OPEN_RETRY_PAUSE = 0.5
"""Seconds between those tries: far longer than the schema setup takes."""

SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file."""

CHROMA_FILE = "chroma.sqlite3"


DEFAULT_DATABASE = "default_database"
"""Chroma's own name for a server's default database."""


def default_db_path() -> str:
    """$SCENEGREP_DB, else $XDG_DATA_HOME/scenegrep (~/.local/share/scenegrep)."""
    if os.environ.get("SCENEGREP_DB"):
        return os.environ["SCENEGREP_DB"]
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "scenegrep")


DEFAULT_PORTS = {"http": 8000, "https": 443}
"""Ports a server URL without one means: `chroma run`'s default, and HTTPS's."""


def location(db: str | None, url: str | None) -> str:
    """How messages, the results file and the vector cache name the index: the
    server URL spelled one way for one server and database (scheme and host in
    lower case, the default port written out, the default database and a
    trailing slash left out: `HOST/default_database/` → `http://host:8000`),
    or the folder."""
    if not url:
        return db or default_db_path()
    url = url.strip()
    parsed = urlparse(url if "://" in url else f"http://{url}")
    scheme = parsed.scheme.lower()
    try:
        port = parsed.port or DEFAULT_PORTS.get(scheme)
    except ValueError:  # a malformed port: left as written, for _open_server to refuse
        return parsed._replace(scheme=scheme).geturl().rstrip("/")
    host = (parsed.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    database = parsed.path.strip("/")
    database = "" if database == DEFAULT_DATABASE else database
    return f"{scheme}://{host}" + (f":{port}" if port else "") + (f"/{database}" if database else "")


def is_server(where: str) -> bool:
    """Whether a location (from `location`) names a server rather than a folder."""
    return where.startswith(("http://", "https://"))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_client(db: str | None = None, url: str | None = None, create: bool = True):
    """An embedded Chroma at folder `db`, or a Chroma server at `url`
    (http://host:port, optionally /DATABASE for one of the server's databases).

    Raises IndexNotFoundError when `create` is False and there is no index,
    DamagedIndexError when the folder's database file is not a database,
    ScenegrepError when the server cannot be reached.
    """
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if url:
        return _open_server(url, create, settings)
    return _open_folder(db or default_db_path(), create, settings)


def _open_folder(db: str, create: bool, settings):
    import chromadb

    database = os.path.join(db, CHROMA_FILE)
    if folder_has_index(db):
        check_database_file(database, reader=not create)
    elif not create:
        raise no_index_at(db)
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            os.makedirs(db, exist_ok=True)
            return chromadb.PersistentClient(path=db, settings=settings)
        except OSError as exc:
            raise ScenegrepError(f"cannot use {db} for the index: {exc.strerror or exc}; pass --db to choose another folder") from exc
        except Exception as exc:  # chromadb's own errors: a damaged folder, or one being created right now
            forget_client(db)
            if attempt == OPEN_ATTEMPTS:
                if os.path.exists(database) and os.path.getsize(database) > 0 and "already exists" not in str(exc):
                    raise DamagedIndexError(
                        f"the index at {db} cannot be opened ({first_line(exc)}); it looks damaged: move the folder "
                        "aside and run `scenegrep index` on your videos again"
                    ) from exc
                raise ScenegrepError(
                    f"cannot open the index at {db} ({first_line(exc)}); if another scenegrep is creating it right "
                    "now, try again in a moment"
                ) from exc
            time.sleep(OPEN_RETRY_PAUSE)


def no_index_at(db: str) -> IndexNotFoundError:
    return IndexNotFoundError(f"no index at {db}; build one with `scenegrep index VIDEOS --db {db}`")


def folder_has_index(db: str) -> bool:
    return os.path.exists(os.path.join(db, CHROMA_FILE))


CHROMA_TABLES = ("collections", "segments", "embeddings")
"""Tables every Chroma database has: a SQLite file without them is not an index."""


def check_database_file(path: str, reader: bool = True) -> None:
    """Refuse an embedded index whose SQLite file is empty, not SQLite, or SQLite
    without Chroma's tables: Chroma would silently start a new, empty index over it
    and strand the old vectors. Reads the file only.

    Raises DamagedIndexError, or for a `reader` ScenegrepError while a running
    `index` is creating it (a writer holds the lock itself: it is the only one)."""
    from .lock import index_is_busy

    folder = os.path.dirname(path)
    try:
        with open(path, "rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise ScenegrepError(f"cannot read the index at {folder}: {exc.strerror or exc}") from exc
    if header == SQLITE_HEADER:
        missing = _missing_tables(path)
        if not missing:
            return
        what = f"has no Chroma tables ({', '.join(missing)})"
    else:
        what = "is empty" if not header else "is not a SQLite database"
    if reader and (not header or header == SQLITE_HEADER) and index_is_busy(folder):
        # SQLite makes the file before its header, and Chroma the tables after it.
        raise ScenegrepError(f"the index at {folder} is being created by a running `scenegrep index`; "
                             "try again in a moment")
    raise DamagedIndexError(
        f"the index at {folder} is damaged: {CHROMA_FILE} {what}; restore it from a backup, or move the folder "
        "aside and run `scenegrep index` on your videos again"
    )


def _missing_tables(path: str) -> list[str]:
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True)) as database:
            found = {row[0] for row in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        return list(CHROMA_TABLES)
    return [table for table in CHROMA_TABLES if table not in found]


def forget_client(db: str) -> None:
    """Make the next client of folder `db` start afresh. Chroma caches one client
    system per folder per process, even one whose start failed (a retry must not
    reuse it), and with the vector index it loaded (a long-lived reader such as
    `scenegrep serve` would never see another process's writes)."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient._identifier_to_system.pop(str(db), None)
    except (ImportError, AttributeError):  # another chromadb layout: the cached system is reused
        pass


def _open_server(url: str, create: bool, settings):
    import chromadb

    parsed = urlparse(location(None, url))
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ScenegrepError(f"--chroma-url {url}: expected http://HOST:PORT or http://HOST:PORT/DATABASE")
    database = parsed.path.strip("/") or DEFAULT_DATABASE
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 8000)
    except ValueError as exc:
        raise ScenegrepError(f"--chroma-url {url}: {exc}") from None
    server = dict(host=parsed.hostname, port=port, ssl=parsed.scheme == "https", settings=settings)
    try:
        admin = chromadb.HttpClient(**server)
        admin.heartbeat()
    except Exception as exc:  # the client raises many kinds; all mean "not reachable"
        raise ScenegrepError(
            f"cannot reach the Chroma server at {url} ({first_line(exc)}); is `chroma run` running there?"
        ) from exc
    if database != DEFAULT_DATABASE:
        admin_client = chromadb.AdminClient(settings=admin.get_settings())
        try:
            admin_client.get_database(database)
        except Exception:  # NotFoundError, whose module moved between chromadb versions
            if not create:
                raise IndexNotFoundError(
                    f"the Chroma server at {url} has no database {database!r}; "
                    f"build one with `scenegrep index VIDEOS --chroma-url {url}`"
                ) from None
            try:
                admin_client.create_database(database)
            except Exception as exc:  # chromadb's errors for invalid names vary by version
                raise ScenegrepError(f"cannot create database {database!r} on {url}: {first_line(exc)}") from exc
    return chromadb.HttpClient(database=database, **server)
