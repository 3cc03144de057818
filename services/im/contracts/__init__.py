"""Records and interfaces shared by gateway, logic and backends (no I/O)."""
