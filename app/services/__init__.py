"""The service layer: each function is one database transaction over the rules of `app`."""
