"""网格规划 → 网格划分 in a real browser, through to the commit: a planner proposes a partition
for one community, previews it (map and balance table), commits it, and the page, the database
and the map tiles all show the new grids. Committing changes the grids, so this module runs on
its own copy of the demo. A viewer cannot propose or commit (page and API).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import psycopg
import pytest

from gis_service.demo.loader import psycopg_conninfo
from tests.fixtures import auth, private_demo
from tests.web_support import (
    api_get,
    idle,
    launch_chromium,
    login_script,
    screenshot,
    wait_map,
    web_server,
)

pytestmark = [pytest.mark.timeout(420)]

VIEWPORT = {"width": 1280, "height": 760}
TOWNSHIP = "430204001"
COMMUNITY = "430204001002"


@pytest.fixture(scope="module")
def own_demo(make_database: Any, demo_city: Any) -> str:
    return private_demo(make_database, demo_city, prefix="webpart")


@pytest.fixture(scope="module")
def base(own_demo: str) -> Iterator[str]:
    with web_server(own_demo) as url:
        yield url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launch_chromium() as browser:
        yield browser


def open_partition_tab(chromium: Any, base: str, login: str) -> tuple[Any, Any]:
    context = chromium.new_context(viewport=VIEWPORT)
    context.add_init_script(login_script(login))
    page = context.new_page()
    page.goto(f"{base}/#view=planner")
    wait_map(page)
    page.click("#tabs button[data-tab='partition']")
    page.wait_for_selector("#pt-township")
    return context, page


def current_grids(url: str) -> dict[str, int]:
    with psycopg.connect(psycopg_conninfo(url)) as c:
        rows = c.execute(
            "SELECT grid_code, households FROM grid WHERE valid_to IS NULL AND community_code = %s",
            (COMMUNITY,),
        ).fetchall()
    return dict(rows)


def test_viewer_cannot_propose_or_commit(chromium: Any, base: str) -> None:
    context, page = open_partition_tab(chromium, base, "a_viewer")
    try:
        assert "只能查看" in page.inner_text("#tab-body")
        page.select_option("#pt-township", TOWNSHIP)
        page.wait_for_selector(f"#pt-community option[value='{COMMUNITY}']", state="attached")
        page.select_option("#pt-community", COMMUNITY)
        assert page.is_disabled("#pt-propose")
        assert page.is_disabled("#pt-commit")
    finally:
        context.close()
    # The API refuses too (the page only mirrors it).
    r = httpx.post(
        f"{base}/grids/proposals",
        json={"communities": [COMMUNITY]},
        headers=auth("a_viewer"),
        timeout=30,
    )
    assert r.status_code == 403


def test_planner_proposes_previews_and_commits(chromium: Any, base: str, own_demo: str) -> None:
    before = current_grids(own_demo)
    assert before
    context, page = open_partition_tab(chromium, base, "a_planner")
    page.on("dialog", lambda d: d.accept())
    try:
        page.select_option("#pt-township", TOWNSHIP)
        page.wait_for_selector(f"#pt-community option[value='{COMMUNITY}']", state="attached")
        page.select_option("#pt-community", COMMUNITY)
        # (the panel is drawn again once the community is chosen: fill the new form)
        page.wait_for_selector("#pt-propose:not([disabled])")
        page.fill("#pt-target", "300")
        page.click("#pt-propose:not([disabled])")
        page.wait_for_selector("#pt-table", timeout=180_000)
        proposal = page.evaluate("window.__gis.lastProposal")
        assert proposal["status"] == "ready"
        expected = api_get(base, "a_planner", f"/grids/proposals/{proposal['id']}")
        features = expected["grids"]["features"]
        assert expected["quality"]["target"] == 300
        # The balance table: each proposed grid with its households and deviation.
        rows = page.locator("#pt-table tr[data-code]").evaluate_all(
            "(trs) => trs.map((tr) => [tr.dataset.code, tr.children[1].textContent,"
            " parseFloat(tr.children[2].textContent)])"
        )
        assert [r[:2] for r in rows] == [
            [f["properties"]["grid_code"], f"{f['properties']['households']:,}"] for f in features
        ]
        for (_, _, shown), f in zip(rows, features, strict=True):
            assert shown == pytest.approx(f["properties"]["deviation"] * 100, abs=0.051)
        # The preview on the map: every proposed grid drawn (the whole proposal in view).
        page.evaluate(
            "(b) => window.__gis.map.fitBounds([[b[0], b[1]], [b[2], b[3]]], {duration: 0})",
            expected["bbox"],
        )
        idle(page)
        drawn = page.evaluate(
            "() => window.__gis.map.queryRenderedFeatures({layers: ['proposal-fill']})"
            ".map((f) => f.properties.grid_code)"
        )
        assert set(drawn) == {f["properties"]["grid_code"] for f in features}
        screenshot(page, "web_partition_commit_preview")

        page.click("#pt-commit:not([disabled])")
        page.wait_for_function(
            "(id) => window.__gis.lastCommit === id", arg=proposal["id"], timeout=180_000
        )
        page.wait_for_selector("#pt-message:has-text('已提交生效')")
        # The database holds exactly the proposed grids now.
        after = current_grids(own_demo)
        assert after == {
            f["properties"]["grid_code"]: f["properties"]["households"] for f in features
        }
        assert after != before
        assert not page.evaluate("window.__gis.state.overlays.proposal.features.length")
        # The grid statistics and the map tiles follow without reloading the page.
        page.click("#tabs button[data-tab='grids']")
        page.wait_for_selector("#grid-table")
        listed = set(
            page.locator("#grid-table tr[data-code]").evaluate_all(
                "(trs) => trs.map((tr) => tr.dataset.code)"
            )
        )
        assert set(after) <= listed
        assert not set(before) - set(after) & listed
        bbox = expected["bbox"]
        page.evaluate(
            "(b) => window.__gis.map.fitBounds([[b[0], b[1]], [b[2], b[3]]], {duration: 0})", bbox
        )
        idle(page)
        page.wait_for_function(
            """(codes) => { const got = new Set(window.__gis.map
                .queryRenderedFeatures({layers: ['grids']}).map((f) => f.properties.grid_code));
                return codes.every((c) => got.has(c)); }""",
            arg=sorted(after),
            timeout=60_000,
        )
        screenshot(page, "web_partition_committed")
    finally:
        context.close()
