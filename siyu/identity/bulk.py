"""Bulk writes for the rebuild: COPY on PostgreSQL, one plain DBAPI executemany per batch on SQLite.

SQLAlchemy's per-row parameter handling costs ~50 µs a row, minutes at 10 million identifiers;
the rows written here are already in their database form, so they skip it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

import numpy as np
from sqlalchemy import Table, func, select, text
from sqlalchemy.orm import Session

BATCH = 20_000


def db_value(session: Session, table: Table, column: str, value: Any) -> Any:
    """`value` as the driver wants it for `column` (e.g. a UTC datetime as SQLite's text form)."""
    dialect = session.get_bind().dialect
    process = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    return process(value) if process else value


def reserve_ids(session: Session, table: Table, n: int) -> np.ndarray:
    """`n` fresh primary keys for `table`, for rows inserted with explicit ids."""
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": n},
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    # SQLite: the caller already wrote in this transaction, so it holds the database's write lock.
    top = session.scalar(select(func.coalesce(func.max(table.c.id), 0)))
    return np.arange(top + 1, top + 1 + n, dtype=np.int64)


def bulk_insert(session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert tuples of database-ready values (see `db_value`) in the session's transaction."""
    conn = session.connection()
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection  # psycopg 3, inside SQLAlchemy's open transaction
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    if conn.dialect.name == "sqlite":
        sql = f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' * len(columns))})"
        it = iter(rows)
        while batch := list(islice(it, BATCH)):
            conn.exec_driver_sql(sql, batch)
        return
    raise NotImplementedError(f"bulk insert on {conn.dialect.name}: Siyu supports SQLite and PostgreSQL")
