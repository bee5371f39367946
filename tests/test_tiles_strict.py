"""Read-your-writes across processes: an edit through one server shows on the very next tile
from another server process whose cache held the old tile (default ``strict`` freshness).

Each process has its own cache and change feed, as uvicorn workers do. No sleeping and no
retry: the next request must already see the edit.
"""

from __future__ import annotations

from typing import Any

import httpx2 as httpx

from tests.fixtures import auth
from tests.test_tiles import decode, rows, tile_of
from tests.web_support import web_server

ROUNDS = 12


def test_edit_on_one_process_shows_at_once_on_another(demo_url: str, conn: Any) -> None:
    eid, lon, lat, original = rows(
        conn,
        "SELECT id, ST_X(geom), ST_Y(geom), name FROM enterprise"
        " WHERE admin_code LIKE '430204%%' ORDER BY id LIMIT 1",
    )[0]
    path = "/tiles/enterprises/{}/{}/{}.mvt".format(*tile_of(lon, lat, 16))
    editor = auth("a_surveyor")
    viewer = auth("national_admin")
    with (
        web_server(demo_url) as a,
        web_server(demo_url) as b,
        httpx.Client(base_url=a, timeout=30) as writer,
        httpx.Client(base_url=b, timeout=30) as reader,
    ):

        def tile_name() -> tuple[str, str]:
            r = reader.get(path, headers=viewer)
            assert r.status_code == 200, r.text
            names = {
                f["id"]: f["properties"]["name"]
                for f in decode(r.content)["enterprises"]["features"]
            }
            return names[eid], r.headers["x-tile-cache"]

        def rename(name: str) -> None:
            etag = writer.get(f"/enterprises/{eid}", headers=editor).headers["etag"]
            r = writer.patch(
                f"/enterprises/{eid}", json={"name": name}, headers={**editor, "If-Match": etag}
            )
            assert r.status_code == 200, r.text

        try:
            for i in range(ROUNDS):
                tile_name()
                before, state = tile_name()
                assert state == "hit"  # process B holds the old tile
                rename(f"严格新鲜度测试{i}")
                after, state = tile_name()  # immediately, from the other process
                assert after == f"严格新鲜度测试{i}", (i, before, after)
                assert state == "miss"
        finally:
            rename(original)
        assert tile_name()[0] == original


def test_every_commit_before_a_check_is_applied_by_it(demo_url: str) -> None:
    """Many commits from another connection, each followed at once by one strict check.

    Also: concurrent checks share round trips, and a killed listener is reported (False)
    and re-opened, never trusted in between.
    """
    import asyncio

    import psycopg

    from gis_service.demo.loader import psycopg_conninfo
    from gis_service.tiles.changes import ChangeFeed

    info = psycopg_conninfo(demo_url)
    seen: list[str] = []
    resets: list[int] = []
    feed = ChangeFeed(info, lambda t, _b: seen.append(t), lambda: resets.append(1))

    async def run() -> None:
        assert await feed.connect()
        with psycopg.connect(info, autocommit=True) as other:
            for i in range(40):
                other.execute(
                    "UPDATE fire_point SET confidence = confidence"
                    " WHERE id = (SELECT min(id) FROM fire_point)"
                )
                assert await feed.check()
                assert seen.count("fire_point") == i + 1, i
            rounds = feed.rounds
            assert all(await asyncio.gather(*(feed.check() for _ in range(50))))
            assert feed.rounds - rounds <= 3  # one shared round, maybe two or three
            other.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s",
                (feed.app_name,),
            )
            await asyncio.sleep(0.3)
            assert not await feed.check()  # down: the cache must be bypassed
            for _ in range(50):
                await asyncio.sleep(0.1)
                if await feed.check():
                    break
            assert await feed.check()
            other.execute(
                "UPDATE fire_point SET confidence = confidence"
                " WHERE id = (SELECT min(id) FROM fire_point)"
            )
            before = seen.count("fire_point")
            assert await feed.check()
            assert seen.count("fire_point") == before + 1
        await feed.close()

    asyncio.run(run())
    assert len(resets) >= 3  # first connect, lost, reconnected
