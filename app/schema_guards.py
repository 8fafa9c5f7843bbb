"""CHECK-like guards for migrations: constraints on PostgreSQL, aborting triggers on SQLite
(which cannot add a CHECK to an existing table). Conditions use {r} for SQLite's NEW. prefix."""

from __future__ import annotations

Check = tuple[str, str, str]  # (table, constraint name, condition)


def statements(dialect: str, checks: list[Check]) -> list[str]:
    if dialect == "postgres":
        return [
            f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" CHECK ({cond.format(r="")})'
            for table, name, cond in checks
        ]
    return [
        f"""CREATE TRIGGER "{name}_{op.lower()}" BEFORE {op} ON "{table}" FOR EACH ROW
            WHEN NOT ({cond.format(r="NEW.")})
            BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END"""
        for table, name, cond in checks
        for op in ("INSERT", "UPDATE")
    ]
