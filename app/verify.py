"""`tally verify`: every stored balance, hold and spend recomputed from the ledger and the
charges, each difference reported (R24: the balances shown always equal the sum of the ledger).

Read-only, plain SQL that both databases run; each check names what it compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.db import connection, fetch
from app.logs import get_logger
from app.metrics import VERIFY_DIFFERENCES

log = get_logger("tally.verify")


@dataclass(frozen=True)
class Difference:
    check: str
    subject: str  # "workspace <id> DATA_CREDITS", "run <id>", ...
    stored: int
    computed: int

    def __str__(self) -> str:
        return f"{self.check}: {self.subject}: stored {self.stored}, computed {self.computed}"


def _meter(meter: str, stored: str) -> str:
    return f"""
SELECT w.id AS subject, {stored} AS stored, COALESCE(SUM(l.amount), 0) AS computed
  FROM workspace w
  LEFT JOIN ledger_entry l ON l.workspace_id = w.id AND l.meter = '{meter}'
 GROUP BY w.id, {stored}
HAVING {stored} <> COALESCE(SUM(l.amount), 0)"""


_NET = "COALESCE(SUM(c.credits - c.refunded_credits), 0)"
CHECKS: tuple[tuple[str, str, str], ...] = (
    (
        "balance = its ledger",
        "workspace {} DATA_CREDITS",
        _meter("DATA_CREDITS", "w.credit_balance"),
    ),
    (
        "Actions left = their ledger",
        "workspace {} ACTIONS",
        _meter("ACTIONS", "w.actions_capacity - w.actions_used"),
    ),
    ("held = its ledger", "workspace {} HELD_CREDITS", _meter("HELD_CREDITS", "w.credits_held")),
    (
        "a run's hold = its ledger",
        "run {}",
        """
SELECT r.id AS subject, r.hold AS stored, COALESCE(SUM(l.amount), 0) AS computed
  FROM run r LEFT JOIN ledger_entry l ON l.run_id = r.id AND l.meter = 'HELD_CREDITS'
 GROUP BY r.id, r.hold HAVING r.hold <> COALESCE(SUM(l.amount), 0)""",
    ),
    (
        "a run's spend = its charges, net of refunds",
        "run {}",
        f"""
SELECT r.id AS subject, r.spent AS stored, {_NET} AS computed
  FROM run r LEFT JOIN charge c ON c.run_id = r.id
 GROUP BY r.id, r.spent HAVING r.spent <> {_NET}""",
    ),
    (
        "a workbook's spend = its charges under the limit in force",
        "workbook {}",
        f"""
SELECT b.id AS subject, b.spent AS stored,
       CASE WHEN b.spend_limit IS NULL THEN 0 ELSE {_NET} END AS computed
  FROM workbook b LEFT JOIN charge c ON c.workbook_id = b.id AND c.spend_epoch = b.spend_epoch
 GROUP BY b.id, b.spent, b.spend_limit
HAVING b.spent <> CASE WHEN b.spend_limit IS NULL THEN 0 ELSE {_NET} END""",
    ),
    (
        "each ledger entry's balance follows the one before",
        "ledger entry {}",
        """
SELECT id AS subject, balance_after AS stored, COALESCE(prev, 0) + amount AS computed
  FROM (SELECT id, amount, balance_after,
               LAG(balance_after) OVER (PARTITION BY workspace_id, meter ORDER BY id) AS prev
          FROM ledger_entry) e
 WHERE balance_after <> COALESCE(prev, 0) + amount""",
    ),
)


async def verify() -> list[Difference]:
    """Every difference between what is stored and what the ledger and charges say."""
    found: list[Difference] = []
    for check, subject, query in CHECKS:
        for row in await fetch(connection(), query):
            label = subject.format(row["subject"])
            found.append(Difference(check, label, int(row["stored"]), int(row["computed"])))
    return found


async def verify_job(now: datetime, batch_size: int | None = None) -> int:
    """The nightly run: the count of differences as a metric, each one logged."""
    differences = await verify()
    VERIFY_DIFFERENCES.set(len(differences))
    for difference in differences:
        log.warning("verify found a difference", difference=str(difference))
    return len(differences)


async def nothing_due(now: datetime) -> int:
    return 0
