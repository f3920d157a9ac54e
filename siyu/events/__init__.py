"""The event store (DuckDB, behind an interface that can later point at ClickHouse)."""
