"""Online backup and restore of a whole ledger database.

A backup is one snapshot of every table in the ledger's database (SQLite) or schema
(PostgreSQL): stored events, followers' tracking, the Merkle tree, checkpoints and
cosignatures, the views and the API's replay table. The snapshot is a single read
transaction, taken while the ledger keeps accepting appends:

* SQLite: a deferred ``BEGIN`` on the ledger's file, which runs in WAL mode, so the first
  read fixes the snapshot and writers are not blocked;
* PostgreSQL: ``REPEATABLE READ, READ ONLY``, so every table is read at one instant.

The file is gzip-compressed JSON lines, readable by any tool and independent of the
database's version: a header (format, backend, origin, head, each table's ``CREATE``
statements), then per table a ``{"table": ...}`` line, one JSON array per row (bytes as
``{"b64": ...}``, UUIDs as ``{"uuid": ...}``) and an ``{"end": ...}`` line with the row
count, then a final line naming every table's count, so a truncated file is refused.
``pg_dump`` is not used: its output names the schema it came from and needs a matching
server version, while a ledger restores into whatever schema its URL names.

:func:`restore` writes a backup into an empty database of the same backend, in one
transaction: a refused or truncated file leaves the database empty.
"""

from __future__ import annotations

import base64
import gzip
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import CreateIndex, CreateTable

from ledger.clock import SYSTEM, Clock
from ledger.config import Settings
from ledger.errors import ConfigurationError, ValidationFailed
from ledger.timeutil import format_utc

__all__ = ["FORMAT", "BackupSummary", "backup", "restore"]

FORMAT = "cmo-ledger-backup/1"
_EVENTS = "ledger_events"
_META = "cmo_ledger_meta"
_ROWS_PER_BATCH = 1000


@dataclass(frozen=True, slots=True)
class BackupSummary:
    """What a backup holds: its origin, the log's head and the rows of each table."""

    backend: str
    origin: str
    head: int
    taken_at: str
    tables: dict[str, int] = field(default_factory=dict)


# ------------------------------------------------------------------------ backup


def backup(settings: Settings, out: Path, *, clock: Clock = SYSTEM) -> BackupSummary:
    """Write a consistent snapshot of the ledger database to ``out`` (see the module)."""
    engine = _engine(settings, must_exist=True)
    try:
        with engine.connect() as conn, _snapshot(conn, settings):
            tables = _table_names(conn, settings)
            if _EVENTS not in tables or _META not in tables:
                raise ConfigurationError(
                    "the database holds no ledger: check CMO_LEDGER_DATABASE_URL",
                    field="CMO_LEDGER_DATABASE_URL",
                )
            ddl = _ddl(conn, settings, tables)
            header = _header(conn, settings, ddl, clock)
            counts = _write_file(conn, out, header, tables)
            conn.rollback()
    finally:
        engine.dispose()
    return BackupSummary(
        header["backend"], header["origin"], header["head"], header["taken_at"], counts
    )


@contextmanager
def _snapshot(conn: Connection, settings: Settings) -> Iterator[None]:
    if settings.is_postgres:
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    else:
        raw: Any = conn.connection.dbapi_connection
        if not raw.in_transaction:
            conn.exec_driver_sql("BEGIN")
    yield


def _table_names(conn: Connection, settings: Settings) -> list[str]:
    if settings.is_postgres:
        return sorted(sa.inspect(conn).get_table_names())
    rows = conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    return sorted(str(name) for (name,) in rows)


def _ddl(conn: Connection, settings: Settings, tables: list[str]) -> dict[str, Any]:
    """Per table: its ``CREATE`` statements and (PostgreSQL) the columns fed by sequences."""
    if not settings.is_postgres:
        return _sqlite_ddl(conn)
    metadata = sa.MetaData()
    metadata.reflect(conn, only=tables)
    found: dict[str, Any] = {}
    for table in metadata.sorted_tables:
        serial = [str(c.name) for c in table.columns if _is_sequence_default(c)]
        for column in table.columns:
            if column.name in serial:
                # A fresh schema has no such sequence: let the column create its own.
                column.server_default = None
                column.autoincrement = True
        create = [str(CreateTable(table).compile(dialect=conn.dialect)).strip()]
        create += [str(CreateIndex(i).compile(dialect=conn.dialect)) for i in table.indexes]
        found[str(table.name)] = {"create": create, "serial": serial}
    return found


def _is_sequence_default(column: sa.Column[Any]) -> bool:
    default = column.server_default
    text = str(getattr(default, "arg", "")) if default is not None else ""
    return text.startswith("nextval(")


def _sqlite_ddl(conn: Connection) -> dict[str, Any]:
    rows = conn.exec_driver_sql(
        "SELECT type, tbl_name, sql FROM sqlite_master "
        "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type = 'table' DESC, name"
    )
    found: dict[str, Any] = {}
    for kind, table, sql in rows:
        if kind in ("table", "index"):
            entry = found.setdefault(str(table), {"create": [], "serial": []})
            entry["create"].append(str(sql))
    return found


def _header(
    conn: Connection, settings: Settings, ddl: dict[str, Any], clock: Clock
) -> dict[str, Any]:
    origin = conn.execute(sa.text(f"SELECT value FROM {_META} WHERE name = 'origin'")).scalar()
    head = conn.execute(sa.text(f"SELECT MAX(id) FROM {_EVENTS}")).scalar()
    return {
        "format": FORMAT,
        "backend": "postgresql" if settings.is_postgres else "sqlite",
        "origin": str(origin or ""),
        "head": int(head or 0),
        "taken_at": format_utc(clock.now()),
        "tables": ddl,
    }


def _write_file(
    conn: Connection, out: Path, header: dict[str, Any], tables: list[str]
) -> dict[str, int]:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    counts: dict[str, int] = {}
    with gzip.open(partial, "wb") as stream:
        _line(stream, header)
        for name in tables:
            counts[name] = _write_table(conn, stream, name)
        _line(stream, {"complete": counts})
    partial.replace(out)
    return counts


def _write_table(conn: Connection, stream: gzip.GzipFile, name: str) -> int:
    quoted = conn.dialect.identifier_preparer.quote(name)
    result = conn.execution_options(stream_results=True).exec_driver_sql(f"SELECT * FROM {quoted}")
    _line(stream, {"table": name, "columns": list(result.keys())})
    count = 0
    for row in result:
        stream.write(orjson.dumps([_encode(value) for value in row]) + b"\n")
        count += 1
    _line(stream, {"end": name, "rows": count})
    return count


def _encode(value: Any) -> Any:
    if isinstance(value, (bytes, memoryview)):
        return {"b64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValidationFailed(f"cannot back up a value of type {type(value).__name__}")


def _line(stream: gzip.GzipFile, document: Any) -> None:
    stream.write(orjson.dumps(document) + b"\n")


# ------------------------------------------------------------------------ restore


def restore(settings: Settings, source: Path) -> BackupSummary:
    """Write the backup ``source`` into the empty database ``settings`` names."""
    try:
        with gzip.open(source, "rb") as stream:
            return _restore_stream(settings, stream)
    except (OSError, EOFError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValidationFailed(
            f"{source} is not a readable cmo-ledger backup: {exc}", field="FILE"
        ) from exc


def _restore_stream(settings: Settings, stream: gzip.GzipFile) -> BackupSummary:
    lines = iter(stream)
    header = _document(next(lines, b""))
    _check_header(header, settings)
    engine = _engine(settings, must_exist=False)
    try:
        with engine.begin() as conn:
            if not settings.is_postgres:
                # pysqlite would commit each CREATE on its own: one explicit transaction.
                conn.exec_driver_sql("BEGIN")
            _refuse_non_empty(conn, settings)
            ddl: dict[str, Any] = header["tables"]
            for entry in ddl.values():
                for statement in entry["create"]:
                    conn.exec_driver_sql(statement)
            counts = _read_tables(conn, lines)
            missing = set(ddl) - set(counts)
            if missing:
                raise ValidationFailed(
                    f"the backup has no rows section for {', '.join(sorted(missing))}",
                    field="FILE",
                )
            if settings.is_postgres:
                _advance_sequences(conn, ddl)
    finally:
        engine.dispose()
    return BackupSummary(
        header["backend"], header["origin"], header["head"], header["taken_at"], counts
    )


def _document(line: bytes) -> Any:
    if not line:
        raise ValidationFailed("the backup ends early: take it again", field="FILE")
    return orjson.loads(line)


def _check_header(header: Any, settings: Settings) -> None:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValidationFailed(f"not a {FORMAT} file", field="FILE")
    backend = "postgresql" if settings.is_postgres else "sqlite"
    if header["backend"] != backend:
        raise ValidationFailed(
            f"this is a {header['backend']} backup: restore it into a {header['backend']} "
            "database (CMO_LEDGER_DATABASE_URL)",
            field="CMO_LEDGER_DATABASE_URL",
        )


def _refuse_non_empty(conn: Connection, settings: Settings) -> None:
    present = _table_names(conn, settings)
    if present:
        raise ConfigurationError(
            f"the database is not empty (it has {len(present)} tables, e.g. {present[0]}): "
            "restore into an empty database",
            field="CMO_LEDGER_DATABASE_URL",
        )


def _read_tables(conn: Connection, lines: Iterator[bytes]) -> dict[str, int]:
    counts: dict[str, int] = {}
    while True:
        document = _document(next(lines, b""))
        if "complete" in document:
            if document["complete"] != counts:
                raise ValidationFailed("the backup's row counts do not match", field="FILE")
            return counts
        name, columns = str(document["table"]), [str(c) for c in document["columns"]]
        counts[name] = _insert_rows(conn, name, columns, lines)


def _insert_rows(
    conn: Connection, name: str, columns: Sequence[str], lines: Iterator[bytes]
) -> int:
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    statement = (
        f"INSERT INTO {quote(name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join(mark for _ in columns)})"
    )
    batch: list[tuple[Any, ...]] = []
    count = 0
    while True:
        document = _document(next(lines, b""))
        if isinstance(document, dict):
            if document.get("end") != name or document.get("rows") != count + len(batch):
                raise ValidationFailed(f"the rows of table {name} are incomplete", field="FILE")
            _flush(conn, statement, batch)
            return count + len(batch)
        batch.append(tuple(_decode(value) for value in document))
        if len(batch) >= _ROWS_PER_BATCH:
            _flush(conn, statement, batch)
            count += len(batch)
            batch = []


def _flush(conn: Connection, statement: str, batch: list[tuple[Any, ...]]) -> None:
    if batch:
        conn.exec_driver_sql(statement, batch)


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "b64" in value:
            return base64.b64decode(value["b64"])
        return uuid.UUID(value["uuid"])
    return value


def _advance_sequences(conn: Connection, ddl: dict[str, Any]) -> None:
    """Start each restored sequence after the largest restored value."""
    quote = conn.dialect.identifier_preparer.quote
    for table, entry in ddl.items():
        for column in entry["serial"]:
            conn.execute(
                sa.text(
                    f"SELECT setval(pg_get_serial_sequence(:t, :c), "
                    f"COALESCE(MAX({quote(column)}), 1), MAX({quote(column)}) IS NOT NULL) "
                    f"FROM {quote(table)}"
                ),
                {"t": table, "c": column},
            )


# ------------------------------------------------------------------------ both


def _engine(settings: Settings, *, must_exist: bool) -> Engine:
    path = settings.sqlite_path()
    if path is not None:
        if must_exist and not path.exists():
            raise ConfigurationError(f"no ledger at {path}", field="CMO_LEDGER_DATABASE_URL")
        path.parent.mkdir(parents=True, exist_ok=True)
        return sa.create_engine(settings.database_url, poolclass=sa.pool.NullPool)
    url = settings.eventsourcing_env()["SQLALCHEMY_URL"]
    return sa.create_engine(url, poolclass=sa.pool.NullPool)
