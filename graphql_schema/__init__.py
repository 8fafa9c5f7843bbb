"""The GraphQL adapter: types, inputs, union results and error codes over `app`'s services."""
