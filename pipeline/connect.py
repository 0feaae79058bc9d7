"""Connecting to Chroma: an embedded folder (`--db`) or a server (`--chroma-url`).

Only this module knows how a location is spelled and how a client is made;
everything above it gets a client and the location's one printable name.
"""

from __future__ import annotations

import os
import time
from urllib.parse import urlparse

from .errors import DamagedIndexError, IndexNotFoundError, ScenegrepError

DEFAULT_DATABASE = "default_database"
"""Chroma's own name for a server's default database."""

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


def default_db_path() -> str:
    """$SCENEGREP_DB, else $XDG_DATA_HOME/scenegrep (~/.local/share/scenegrep)."""
    if os.environ.get("SCENEGREP_DB"):
        return os.environ["SCENEGREP_DB"]
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "scenegrep")


def location(db: str | None, url: str | None) -> str:
    """How messages, the results file and the vector cache name the index: the
    server URL with its scheme spelled out in lower case and no trailing slash
    (`host:8000/` → `http://host:8000`), or the folder."""
    if url:
        url = url.strip()
        parsed = urlparse(url if "://" in url else f"http://{url}")
        return parsed._replace(scheme=parsed.scheme.lower(), netloc=parsed.netloc.lower()).geturl().rstrip("/")
    return db or default_db_path()


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
        check_database_file(database)
    elif not create:
        raise no_index_at(db)
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            os.makedirs(db, exist_ok=True)
            return chromadb.PersistentClient(path=db, settings=settings)
        except OSError as exc:
            raise ScenegrepError(f"cannot use {db} for the index: {exc.strerror or exc}; pass --db to choose another folder") from exc
        except Exception as exc:  # chromadb's own errors: a damaged folder, or one being created right now
            _forget_failed_client(db)
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


def check_database_file(path: str) -> None:
    """Refuse an embedded index whose SQLite file is empty or not SQLite: Chroma
    would silently start a new, empty index over it and strand the old vectors.

    Raises DamagedIndexError."""
    folder = os.path.dirname(path)
    try:
        with open(path, "rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise ScenegrepError(f"cannot read the index at {folder}: {exc.strerror or exc}") from exc
    if header == SQLITE_HEADER:
        return
    what = "is empty" if not header else "is not a SQLite database"
    raise DamagedIndexError(
        f"the index at {folder} is damaged: {CHROMA_FILE} {what}; restore it from a backup, or move the folder "
        "aside and run `scenegrep index` on your videos again"
    )


def forget_client(db: str) -> None:
    """Make the next client of folder `db` read it afresh: Chroma keeps one
    system per folder per process, with the vector index it loaded, so a
    long-lived reader (`scenegrep serve`) would never see another process's writes."""
    _forget_failed_client(db)


def _forget_failed_client(db: str) -> None:
    """Chroma caches one client system per folder, even one whose start failed; drop it so a retry starts afresh."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient._identifier_to_system.pop(str(db), None)
    except (ImportError, AttributeError):  # another chromadb layout: a retry then reuses the cached system
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
