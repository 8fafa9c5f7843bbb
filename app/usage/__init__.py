"""Usage: what it costs (pricing, rules), estimates, and the charge and refund services
(R2-R13, R22, R23, R25)."""
