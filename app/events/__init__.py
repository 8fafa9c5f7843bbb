"""Events (R34) and alerts (R35): written by the service that makes a change, in its
transaction, with one outbox row per webhook endpoint that wants it (R36)."""
