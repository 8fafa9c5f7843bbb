"""Runs: budgets, holds and stopping (R6, R23)."""
