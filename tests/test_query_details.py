"""The per-worker ready details of locate answers are used, and never outlive a committed change.

Edits are committed from another connection (as ``psql`` or another worker would) and the
very next request must show them, through the fast path and through the route; with the
change feed cut the cache is bypassed and answers stay right.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.demo.loader import psycopg_conninfo
from gis_service.query import details
from tests.fixtures import auth, staffed_grid_point


@pytest.fixture(scope="module")
def spot(demo_url: str) -> tuple[float, float]:
    """A point inside a grid of 石峰区 that has a grid worker."""
    return staffed_grid_point(demo_url)


@pytest.fixture
def writer(demo_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection of its own (each statement is committed at once)."""
    with psycopg.connect(psycopg_conninfo(demo_url), autocommit=True) as c:
        yield c


@pytest.fixture
def fetches(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The detail reads (kind → ids) made from now on."""
    seen: list[dict[str, Any]] = []
    real = details.fetch

    async def counting(conn: Any, wanted: Any) -> Any:
        seen.append({k: set(v) for k, v in wanted.items()})
        return await real(conn, wanted)

    monkeypatch.setattr(details, "fetch", counting)
    return seen


def _locate(client: TestClient, spot: tuple[float, float], login: str, *, fast: bool = True) -> Any:
    state: Any = client.app.state  # type: ignore[attr-defined]
    state.query_fast_path = fast
    try:
        r = client.get(
            "/query/locate",
            params={"lon": spot[0], "lat": spot[1], "crs": "cgcs2000"},
            headers=auth(login),
        )
    finally:
        state.query_fast_path = True
    assert r.status_code == 200, r.text
    return r.json()


def _worker(answer: Any) -> dict[str, Any]:
    return next(s for s in answer["grid"]["staff"] if s["role"] == "grid_worker")


def test_details_are_kept_and_masked_per_role(
    client: TestClient, spot: tuple[float, float], fetches: list[dict[str, Any]]
) -> None:
    first = _locate(client, spot, "a_commander")
    again = _locate(client, spot, "a_commander")
    masked = _locate(client, spot, "a_viewer")
    route = _locate(client, spot, "a_viewer", fast=False)
    assert again == first
    assert masked == route
    # At most the first request read details; the others found them kept.
    assert len(fetches) <= 1
    plain, hidden = _worker(first), _worker(masked)
    assert hidden["name"] != plain["name"]
    assert hidden["name"][0] == plain["name"][0]
    assert hidden["phone"] != plain["phone"]
    assert hidden["phone"][-4:] == plain["phone"][-4:]


@pytest.mark.parametrize("fast", [True, False])
def test_a_committed_change_shows_on_the_next_request(
    client: TestClient,
    spot: tuple[float, float],
    writer: psycopg.Connection[Any],
    fast: bool,
) -> None:
    before = _worker(_locate(client, spot, "a_commander", fast=fast))
    _locate(client, spot, "a_commander", fast=fast)  # kept now
    person = writer.execute(
        "SELECT p.id, p.phone FROM person p JOIN grid_assignment ga ON ga.person_id = p.id"
        " JOIN grid g ON g.id = ga.grid_id WHERE g.grid_code = %s AND ga.role = 'grid_worker'"
        " AND ga.end_date IS NULL AND p.name = %s",
        (_locate(client, spot, "a_commander")["grid"]["grid_code"], before["name"]),
    ).fetchone()
    assert person is not None
    writer.execute("UPDATE person SET phone = '13900000000' WHERE id = %s", (person[0],))
    try:
        after = _worker(_locate(client, spot, "a_commander", fast=fast))
    finally:
        writer.execute("UPDATE person SET phone = %s WHERE id = %s", (person[1], person[0]))
    assert after["phone"] == "13900000000"
    assert _worker(_locate(client, spot, "a_commander", fast=fast))["phone"] == person[1]


def test_shelter_edits_show_at_once(
    client: TestClient, spot: tuple[float, float], writer: psycopg.Connection[Any]
) -> None:
    shelter = _locate(client, spot, "a_commander")["nearest_shelter"]
    writer.execute("UPDATE shelter SET name = name || '（测试）' WHERE id = %s", (shelter["id"],))
    try:
        renamed = _locate(client, spot, "a_commander")["nearest_shelter"]
    finally:
        writer.execute(
            "UPDATE shelter SET name = %s WHERE id = %s", (shelter["name"], shelter["id"])
        )
    assert renamed["name"] == shelter["name"] + "（测试）"
    assert _locate(client, spot, "a_commander")["nearest_shelter"]["name"] == shelter["name"]


def test_with_the_feed_cut_the_cache_is_bypassed(
    client: TestClient,
    spot: tuple[float, float],
    writer: psycopg.Connection[Any],
    fetches: list[dict[str, Any]],
) -> None:
    cache: details.DetailCache = client.app.state.query_details  # type: ignore[attr-defined]
    _locate(client, spot, "a_commander")
    assert cache.listener.healthy
    # Cut every locate feed of the test session (they re-open by themselves).
    writer.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'gis-change-feed'"
    )
    shelter = _locate(client, spot, "a_commander")["nearest_shelter"]
    writer.execute("UPDATE shelter SET name = name || '（改）' WHERE id = %s", (shelter["id"],))
    try:
        n = len(fetches)
        seen = _locate(client, spot, "a_commander")["nearest_shelter"]["name"]
        assert len(fetches) > n, "details are read while the feed is down or just re-opened"
    finally:
        writer.execute(
            "UPDATE shelter SET name = %s WHERE id = %s", (shelter["name"], shelter["id"])
        )
    assert seen == shelter["name"] + "（改）"
    deadline = time.monotonic() + 10
    while not cache.listener.healthy:  # re-opened in the background on a later request
        assert time.monotonic() < deadline, "the feed came back"
        _locate(client, spot, "a_commander")
        time.sleep(0.1)
    assert _locate(client, spot, "a_commander")["nearest_shelter"]["name"] == shelter["name"]
