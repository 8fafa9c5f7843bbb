"""Plans and cycles: terms, anchors, rollover, renewals and plan changes (R14-R21, R27-R31)."""
