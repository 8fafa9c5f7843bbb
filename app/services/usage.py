"""Recording one usage report (R2–R13, R23, R25): a batch of one, through `charging`.

Kept as the name resolvers and tests call; the rules live in `app.charge_rules` and the
transaction in `app.services.charging`.
"""

from __future__ import annotations

from app.services.charging import UsageReport, charge_batch, charge_one

record_usage = charge_one

__all__ = ["UsageReport", "charge_batch", "record_usage"]
