"""Tally's domain: catalogs, meters, ledger and the rules of RULES.md.

Nothing in this package imports GraphQL or the scheduler; adapters call into it.
"""
