"""The `tally` command line."""
