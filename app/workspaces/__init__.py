"""Workspaces, their API keys and their workbooks."""
