"""Scheduled jobs: APScheduler ticks, the database decides what is due (STACK-NOTES.md)."""
