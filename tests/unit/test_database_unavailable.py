"""Which errors mean "the database cannot be reached now" (503) rather than a bug (500)."""

import socket
import sqlite3

import asyncpg
import pytest
from tortoise.exceptions import DBConnectionError, IntegrityError, OperationalError

from app.db import is_unavailable


def raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as error:
            raise outer from error
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (ConnectionRefusedError(111, "Connection refused"), True),
        (ConnectionResetError(104, "reset"), True),
        (TimeoutError(), True),
        (socket.gaierror(-2, "Name or service not known"), True),
        (DBConnectionError("can't connect"), True),
        (asyncpg.ConnectionDoesNotExistError("connection was closed"), True),
        (asyncpg.AdminShutdownError("terminating connection"), True),
        (asyncpg.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.TooManyConnectionsError("too many clients"), True),
        (asyncpg.InterfaceError("connection is closed"), True),
        (asyncpg.InterfaceError("cannot perform operation: another operation"), False),
        (raised_from(OperationalError("x"), sqlite3.OperationalError("database is locked")), True),
        (raised_from(OperationalError("x"), ConnectionResetError()), True),
        (OperationalError("syntax error"), False),
        (IntegrityError("duplicate key"), False),
        (FileNotFoundError("catalog.toml"), False),
        (ValueError("bug"), False),
    ],
)
def test_lost_database_errors_are_told_from_bugs(error, unavailable):
    assert is_unavailable(error) is unavailable
