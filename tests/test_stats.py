"""/stats tables against plain Python counts over the same rows, including scope."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter, defaultdict
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.fixtures import auth


def _divisions(conn: psycopg.Connection[Any]) -> list[tuple[str, str | None, list[str]]]:
    return conn.execute("SELECT code, parent_code, ancestors FROM admin_division").fetchall()


def _expected(
    conn: psycopg.Connection[Any],
    parent: str,
    scope: str,
    t1: dt.datetime,
    t0: dt.datetime | None = None,
) -> dict[str, Counter[str]]:
    divs = _divisions(conn)
    visible = {c for c, _, anc in divs if scope in anc}
    children = {c for c, p, _ in divs if p == parent and c in visible}
    unit_of = {c: next((a for a in anc if a in children), None) for c, _, anc in divs}
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for code, risk in conn.execute("SELECT admin_code, risk_level FROM enterprise").fetchall():
        if unit_of.get(code) and code in visible:
            out[unit_of[code]]["enterprises"] += 1
            out[unit_of[code]][f"enterprises_{risk}"] += 1
    for code, found, closed, deadline, level in conn.execute(
        "SELECT admin_code, found_at, closed_at, deadline, level FROM safety_hazard"
    ).fetchall():
        u = unit_of.get(code)
        if not u or code not in visible:
            continue
        if (t0 is None or found >= t0) and found < t1:
            out[u]["hazards_found"] += 1
            out[u]["hazards_major"] += level == "major"
        if closed is not None and (t0 is None or closed >= t0) and closed < t1:
            out[u]["hazards_closed"] += 1
        if (
            found < t1
            and deadline is not None
            and deadline < t1.date()
            and (closed is None or closed >= t1)
        ):
            out[u]["hazards_overdue"] += 1
    for code, grade, people in conn.execute(
        "SELECT admin_code, danger_grade, threatened_people FROM geohazard_point WHERE NOT closed"
    ).fetchall():
        if unit_of.get(code) and code in visible:
            out[unit_of[code]]["geohazard_points"] += 1
            out[unit_of[code]][f"geohazard_{grade}"] += 1
            out[unit_of[code]]["threatened_people"] += people
    for code, hh, pop in conn.execute(
        "SELECT admin_code, households, population FROM building"
    ).fetchall():
        if unit_of.get(code) and code in visible:
            out[unit_of[code]]["buildings"] += 1
            out[unit_of[code]]["households"] += hh
            out[unit_of[code]]["population"] += pop
    for code, cap in conn.execute("SELECT admin_code, capacity FROM shelter").fetchall():
        if unit_of.get(code) and code in visible:
            out[unit_of[code]]["shelters"] += 1
            out[unit_of[code]]["shelter_capacity"] += cap
    for (code,) in conn.execute(
        "SELECT community_code FROM grid WHERE valid_to IS NULL"
    ).fetchall():
        if unit_of.get(code) and code in visible:
            out[unit_of[code]]["grids"] += 1
    for u in children:
        out.setdefault(u, Counter())
    return out


def _compare(rows: list[dict[str, Any]], want: dict[str, Counter[str]]) -> None:
    assert {r["code"] for r in rows} == set(want)
    for r in rows:
        for k, v in want[r["code"]].items():
            assert r[k] == v, (r["code"], k, r[k], v)
        found = want[r["code"]]["hazards_found"]
        if found:
            assert r["closure_rate"] == round(want[r["code"]]["hazards_closed"] / found, 4)


def test_county_by_township_matches_python(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    r = client.get("/stats/divisions", headers=auth("a_planner"))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["unit"]["code"] == "430204"
    now = dt.datetime.fromisoformat(doc["period"]["as_of"])
    _compare(doc["rows"], _expected(conn, "430204", "430204", now))
    assert len(doc["rows"]) == 6
    total = doc["total"]
    assert total["enterprises"] == 379
    assert total["hazards_found"] == 1056
    assert total["hazards_closed"] == 986
    assert total["closure_rate"] == pytest.approx(0.9337, abs=1e-4)


def test_township_by_village_and_month(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    r = client.get("/stats/divisions", params={"parent": "430204001"}, headers=auth("a_planner"))
    _compare(
        r.json()["rows"],
        _expected(
            conn, "430204001", "430204", dt.datetime.fromisoformat(r.json()["period"]["as_of"])
        ),
    )
    month = conn.execute(
        "SELECT to_char(max(found_at) AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') FROM safety_hazard"
    ).fetchone()
    assert month is not None
    r = client.get("/stats/divisions", params={"month": month[0]}, headers=auth("a_planner"))
    period = r.json()["period"]
    want = _expected(
        conn,
        "430204",
        "430204",
        dt.datetime.fromisoformat(period["to"]),
        dt.datetime.fromisoformat(period["from"]),
    )
    _compare(r.json()["rows"], want)
    assert r.json()["total"]["hazards_found"] > 0


def test_scope_of_stats(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    # The city asked by a county user: only the own county's row (no sibling totals leak).
    r = client.get("/stats/divisions", params={"parent": "430200"}, headers=auth("a_viewer"))
    assert r.status_code == 200
    assert [row["code"] for row in r.json()["rows"]] == ["430204"]
    city = client.get(
        "/stats/divisions", params={"parent": "430200"}, headers=auth("city_surveyor")
    ).json()
    rows = {row["code"]: row for row in city["rows"]}
    assert rows["430202"]["enterprises"] == 1  # the sibling county's test enterprise
    assert rows["430204"]["enterprises"] == 379
    assert (
        client.get(
            "/stats/divisions", params={"parent": "430202"}, headers=auth("a_viewer")
        ).status_code
        == 404
    )
    assert (
        client.get("/stats/grids", params={"code": "440304"}, headers=auth("a_viewer")).status_code
        == 404
    )
    assert client.get("/stats/divisions", headers=auth("national_admin")).status_code == 400


def test_grid_table_matches_python(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    r = client.get("/stats/grids", params={"code": "430204002"}, headers=auth("a_planner"))
    assert r.status_code == 200, r.text
    rows = {row["code"]: row for row in r.json()["rows"]}
    grids = conn.execute(
        "SELECT g.grid_code FROM grid g JOIN admin_division v ON v.code = g.community_code WHERE g.valid_to IS NULL AND '430204002' = ANY(v.ancestors)"
    ).fetchall()
    assert set(rows) == {g for (g,) in grids}
    hh = Counter[str]()
    ent = Counter[str]()
    for g, n in conn.execute("SELECT grid_code, households FROM building").fetchall():
        hh[g] += n
    for (g,) in conn.execute("SELECT grid_code FROM enterprise").fetchall():
        ent[g] += 1
    for code, row in rows.items():
        assert row["households"] == hh[code]
        assert row["enterprises"] == ent[code]


def test_stats_downloads(client: TestClient) -> None:
    doc = client.get("/stats/divisions", headers=auth("a_planner")).json()
    r = client.get("/stats/divisions", params={"format": "csv"}, headers=auth("a_planner"))
    assert r.status_code == 200
    table = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert table[-1]["区划代码"] == "合计"
    assert int(table[-1]["企业总数"]) == doc["total"]["enterprises"]
    assert [t["名称"] for t in table[:-1]] == [row["name"] for row in doc["rows"]]
    r = client.get("/stats/grids", params={"format": "xlsx"}, headers=auth("a_planner"))
    assert r.status_code == 200
    assert r.content[:2] == b"PK"
    for bad in ({"month": "2026-13"}, {"month": "x"}, {"parent": "43020x"}, {"format": "pdf"}):
        assert (
            client.get("/stats/divisions", params=bad, headers=auth("a_planner")).status_code == 422
        )
