"""The worker's one change feed: strict checks, tickets shared by a request, subscriptions.

A request that reads two caches (the principal, then locate's details) must pay one round
trip, not one per cache, without ever trusting a cache that missed a change committed before
the request arrived.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.db.engine import libpq_url
from gis_service.db.listen import Listener
from gis_service.demo.loader import psycopg_conninfo
from tests.fixtures import auth, staffed_grid_point

CHANNEL = "gis_test_feed"


def _notify(url: str, channel: str, payload: str) -> None:
    """Commit a notification from another connection (returns after the commit)."""
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as c:
        c.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def test_a_ticket_is_served_by_one_later_round(demo_url: str) -> None:
    heard: list[str] = []
    resets: list[int] = []

    async def go() -> None:
        feed = Listener(libpq_url(demo_url), app_name="gis-test-feed")
        await feed.subscribe({CHANNEL: heard.append}, lambda: resets.append(1))
        try:
            assert feed.healthy
            assert resets == [1]
            ticket = feed.ticket()
            before = feed.rounds
            # Three checks of one request, two of them at once: one round trip.
            assert all(await asyncio.gather(feed.check(ticket), feed.check(ticket)))
            assert await feed.check(ticket)
            assert feed.rounds == before + 1
            # A change committed before the next request arrives is applied by its check.
            await asyncio.to_thread(_notify, demo_url, CHANNEL, "first")
            assert await feed.check(feed.ticket())
            assert heard == ["first"]
            assert feed.rounds == before + 2
            # Without a ticket every check waits for a round of its own.
            assert await feed.check()
            assert feed.rounds == before + 3
        finally:
            await feed.close()

    asyncio.run(go())


def test_a_round_started_before_the_ticket_does_not_count(demo_url: str) -> None:
    async def go() -> None:
        feed = Listener(libpq_url(demo_url), app_name="gis-test-feed")
        await feed.subscribe({CHANNEL: lambda _p: None}, lambda: None)
        try:
            first = asyncio.ensure_future(feed.check())
            while feed.rounds == 0:  # noqa: ASYNC110 - until the round has its number
                await asyncio.sleep(0)
            assert not first.done()
            ticket = feed.ticket()
            await first
            started = feed.rounds
            assert await feed.check(ticket)
            assert feed.rounds == started + 1, "a round begun before the ticket is not enough"
        finally:
            await feed.close()

    asyncio.run(go())


def test_a_late_subscriber_hears_its_channel_and_resets_everyone(demo_url: str) -> None:
    early: list[str] = []
    late: list[str] = []
    resets: list[str] = []

    async def go() -> None:
        feed = Listener(libpq_url(demo_url), app_name="gis-test-feed")
        await feed.subscribe({CHANNEL: early.append}, lambda: resets.append("early"))
        await feed.subscribe({CHANNEL + "_b": late.append}, lambda: resets.append("late"))
        try:
            await asyncio.to_thread(_notify, demo_url, CHANNEL, "a")
            await asyncio.to_thread(_notify, demo_url, CHANNEL + "_b", "b")
            assert await feed.check()
            assert (early, late) == (["a"], ["b"])
            # Re-opened for the late channel: both caches were told they may have missed changes.
            assert resets[0] == "early"
            assert "early" in resets[1:]
            assert "late" in resets[1:]
        finally:
            await feed.close()

    asyncio.run(go())


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "route"])
def test_locate_pays_one_round_for_principal_and_details(
    client: TestClient, demo_url: str, fast: bool
) -> None:
    spot = staffed_grid_point(demo_url)
    state: Any = client.app.state  # type: ignore[attr-defined]
    feed: Listener = state.changes
    params = {"lon": spot[0], "lat": spot[1], "crs": "cgcs2000"}
    served = getattr(state, "query_fast_served", 0)
    state.query_fast_path = fast
    try:
        assert client.get("/query/locate", params=params, headers=auth("a_commander")).is_success
        assert feed.healthy
        for _ in range(3):
            before = feed.rounds
            r = client.get("/query/locate", params=params, headers=auth("a_commander"))
            assert r.status_code == 200, r.text
            assert r.json()["grid"] is not None
            assert feed.rounds == before + 1
    finally:
        state.query_fast_path = True
    assert (getattr(state, "query_fast_served", 0) > served) is fast
    # The principal and details caches share it: one connection listens for the worker.
    assert state.principals.listener is feed is state.query_details.listener
