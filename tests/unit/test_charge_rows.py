"""The rows a single charge's first read brings along (app.usage.rows), named for ROW()."""

import pytest

from app.usage.rows import WORKBOOK_COLUMNS, _named, seen_of


def test_a_select_list_is_split_into_expressions_and_names():
    assert _named("credit_balance, credit_balance - credits_held AS available") == (
        ("credit_balance", "credit_balance"),
        ("credit_balance - credits_held", "available"),
    )


def test_an_expression_with_a_comma_is_refused_rather_than_misnamed():
    with pytest.raises(RuntimeError, match="name each column"):
        _named("coalesce(a, b) AS x")


def test_missing_rows_are_seen_as_nothing():
    workbook = ("7", *(None for _ in WORKBOOK_COLUMNS))
    assert seen_of({"__workspace": None, "__workbook": workbook}) is None
    assert seen_of({}) is None
