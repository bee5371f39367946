"""The Python twins of the value CHECKs (``ValueRule``) agree with the SQL the database runs.

A first bulk load skips a CHECK whose rule holds on the values it wrote, so a rule that
passed a value PostgreSQL would refuse would let a bad row in: every rule is tried here,
value by value, against its own constraint's SQL in PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import CheckConstraint
from sqlalchemy.dialects import postgresql

from gis_service.db.models import Base, ValueRule
from tests.fixtures import BUILDING_VALUE_CHECKS


def _rules() -> list[tuple[str, CheckConstraint, ValueRule]]:
    found = []
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            rule = constraint.info.get("rule")
            if isinstance(constraint, CheckConstraint) and isinstance(rule, ValueRule):
                found.append((table.name, constraint, rule))
    return found


def _candidates(rule: ValueRule) -> list[Any]:
    """Values on both sides of the rule (and None)."""
    if rule.choices:
        return [None, *rule.choices, "", rule.choices[0].upper(), rule.choices[0] + " ", "其他"]
    if rule.digits is not None:
        n = rule.digits
        return [
            None,
            "4" * n,
            "0" * n,
            "4" * (n - 1),
            "4" * (n + 1),
            "4" * (n - 1) + "x",
            "４" * n,  # full-width digits: not ASCII
            "4" * (n - 2) + " 4",
            "٤" * n,  # Arabic-Indic digits: str.isdigit() says yes, SQL no
        ]
    low = -100 if rule.low is None else rule.low
    high = 1000 if rule.high is None else rule.high
    return [None, low, low - 1, high, high + 1, (low + high) // 2, 0]


def test_the_building_table_declares_its_value_rules() -> None:
    """The checks a first building load may prove (nine: 2.6 s of backend CPU per million)."""
    names = {str(c.name) for table, c, _ in _rules() if table == "building"}
    assert names == BUILDING_VALUE_CHECKS


@pytest.mark.parametrize(
    ("table", "constraint", "rule"),
    _rules(),
    ids=[str(c.name) for _, c, _ in _rules()],
)
def test_a_rule_passes_only_what_its_check_passes(
    conn: psycopg.Connection[Any], table: str, constraint: CheckConstraint, rule: ValueRule
) -> None:
    """Whatever the rule passes, PostgreSQL's CHECK passes; apart from NULL (which SQL
    lets through an AND, and a NOT NULL rule refuses), they agree on every candidate."""
    columns = Base.metadata.tables[table].c
    # Text as text: a cast to varchar(n) would cut a value to n characters.
    types = [columns[c].type.compile(dialect=postgresql.dialect()) for c in rule.columns]
    types = ["text" if t.startswith("VARCHAR") else t for t in types]
    for value in _candidates(rule):
        selected = ", ".join(
            f"CAST(%s AS {t}) AS {c}" for c, t in zip(rule.columns, types, strict=True)
        )
        row = conn.execute(
            f"SELECT coalesce(({constraint.sqltext}), true) FROM (SELECT {selected}) t",
            [value] * len(rule.columns),
        ).fetchone()
        assert row is not None
        in_sql = bool(row[0])
        in_python = rule.holds([value])
        if in_python:
            assert in_sql, (constraint.name, value)
        if value is not None:
            assert in_python == in_sql, (constraint.name, value)


def test_a_rule_holds_only_for_plain_values() -> None:
    """Types PostgreSQL would cast (bools, floats, numpy numbers) are not proven."""
    import numpy as np

    floors = ValueRule(("floors",), low=-10, high=200)
    assert floors.holds([1, 2, None, 200, -10])
    assert not floors.holds([True])
    assert not floors.holds([2.0])
    assert not floors.holds([np.int64(3)])
    assert not ValueRule(("n",), low=0, nullable=False).holds([1, None])
    assert ValueRule(("n",), low=0, nullable=False).holds([])
