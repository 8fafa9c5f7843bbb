"""Webhooks (R36): endpoints, the outbox's delivery worker, signatures and retention. The
outbox rows themselves are written with each event (app.events.store)."""
