"""网格规划 → 网格划分 in a real browser, through to the commit: a planner proposes a partition
for one community, previews it (map and balance table), commits it, and the page, the database
and the map tiles all show the new grids. Committing changes the grids, so this module runs on
its own copy of the demo. A viewer cannot propose or commit (page and API).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import psycopg
import pytest
from shapely.geometry import shape

from gis_service.db.engine import make_sync_engine
from gis_service.demo.loader import psycopg_conninfo
from gis_service.grids.store import proposal_graph
from tests.fixtures import auth, private_demo
from tests.web_support import (
    api_get,
    api_post,
    click_lonlat,
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


def unassigned(url: str) -> set[str]:
    """Current grids of the district without an open grid-worker assignment (the database)."""
    with psycopg.connect(psycopg_conninfo(url)) as c:
        rows = c.execute(
            """SELECT g.grid_code FROM grid g WHERE g.valid_to IS NULL
                 AND g.community_code LIKE %s AND NOT EXISTS (
                   SELECT 1 FROM grid_assignment a WHERE a.grid_id = g.id
                     AND a.role = 'grid_worker' AND a.start_date <= current_date
                     AND (a.end_date IS NULL OR a.end_date >= current_date))""",
            ("430204%",),
        ).fetchall()
    return {r[0] for r in rows}


def test_unassigned_grids_are_outlined_only_when_there_are_some(
    chromium: Any, base: str, own_demo: str
) -> None:
    """The red dashed outline (its own shader program) is off while every grid has a worker,
    and outlines exactly the grid that lost its workers."""
    context, page = open_partition_tab(chromium, base, "a_planner")
    try:
        page.wait_for_function("() => window.__gis.state.gridMetrics !== null")
        assert set(page.evaluate("[...window.__gis.state.unassigned]")) == unassigned(own_demo)
        assert not unassigned(own_demo), "the demo gives every grid a worker"
        assert (
            page.evaluate("window.__gis.map.getLayoutProperty('grids-unassigned', 'visibility')")
            == "none"
        )
    finally:
        context.close()
    with psycopg.connect(psycopg_conninfo(own_demo)) as c:
        code = c.execute(
            "SELECT grid_code FROM grid WHERE valid_to IS NULL AND community_code = '430204002001'"
            " ORDER BY grid_code LIMIT 1"
        ).fetchone()[0]
        c.execute(
            "DELETE FROM grid_assignment WHERE grid_id IN"
            " (SELECT id FROM grid WHERE grid_code = %s AND valid_to IS NULL)",
            (code,),
        )
    context, page = open_partition_tab(chromium, base, "a_planner")
    try:
        page.wait_for_function("() => window.__gis.state.gridMetrics !== null")
        assert page.evaluate("[...window.__gis.state.unassigned]") == [code]
        assert unassigned(own_demo) == {code}
        assert (
            page.evaluate("window.__gis.map.getLayoutProperty('grids-unassigned', 'visibility')")
            == "visible"
        )
        state = page.evaluate(
            "(id) => window.__gis.map.getFeatureState({source: 'gis', sourceLayer: 'grids', id})",
            code,
        )
        assert state == {"unassigned": True}
    finally:
        context.close()


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


# ---------------------------------------------------------------- editing a proposal on the map
EDIT_COMMUNITY = "430204001001"


def proposal_grids(url: str, pid: int) -> dict[int, tuple[str, int, int]]:
    """label → (grid code, households, independent sum of its units' households), from the DB."""
    with psycopg.connect(psycopg_conninfo(url)) as c:
        rows = c.execute(
            """SELECT g.label, g.grid_code, g.households,
                      (SELECT sum(u.households) FROM grid_proposal_unit u
                        WHERE u.proposal_id = g.proposal_id
                          AND u.community_code = g.community_code AND u.label = g.label)
               FROM grid_proposal_grid g WHERE g.proposal_id = %s AND g.community_code = %s""",
            (pid, EDIT_COMMUNITY),
        ).fetchall()
    return {r[0]: (r[1], r[2], int(r[3] or 0)) for r in rows}


def unit_graph(url: str, pid: int) -> tuple[list[int], list[int], list[set[int]]]:
    """Units' labels and households and their neighbours: the graph the edits are checked on."""
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            g, labels, _ = proposal_graph(conn, pid, EDIT_COMMUNITY)
    finally:
        engine.dispose()
    nb: list[set[int]] = [set() for _ in range(g.n)]
    for a, b in zip(g.edge_a.tolist(), g.edge_b.tolist(), strict=True):
        nb[a].add(b)
        nb[b].add(a)
    return [int(x) for x in labels], [int(x) for x in g.households], nb


def one_piece(members: set[int], nb: list[set[int]]) -> bool:
    """Breadth-first search inside a set of units (independent of the API's check)."""
    if not members:
        return True
    start = next(iter(members))
    seen, todo = {start}, [start]
    while todo:
        for v in nb[todo.pop()] & members:
            if v not in seen:
                seen.add(v)
                todo.append(v)
    return seen == members


def find_moves(
    labels: list[int], households: list[int], nb: list[set[int]]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """A (unit, to_label) move that keeps both grids one piece, and one that cuts its grid."""
    grids: dict[int, set[int]] = {}
    for u, lab in enumerate(labels):
        grids.setdefault(lab, set()).add(u)
    good = bad = None
    for u, src in enumerate(labels):
        others = {labels[v] for v in nb[u]} - {src}
        if not others or len(grids[src]) < 3:
            continue
        keeps = one_piece(grids[src] - {u}, nb)
        if keeps and good is None and households[u] > 0:
            good = (u, min(others))
        if not keeps and bad is None:
            bad = (u, min(others))
        if good and bad:
            return good, bad
    raise AssertionError("no movable and no cutting unit in the community")


def pick_unit(page: Any, proposal: dict[str, Any], idx: int) -> None:
    """Zoom to a unit of the proposal and click inside it on the map."""
    feature = next(f for f in proposal["units"]["features"] if f["properties"]["idx"] == idx)
    geom = shape(feature["geometry"])
    page.evaluate(
        "(b) => window.__gis.map.fitBounds([[b[0], b[1]], [b[2], b[3]]],"
        " {duration: 0, padding: 120, maxZoom: 18})",
        list(geom.bounds),
    )
    idle(page)
    point = geom.representative_point()
    click_lonlat(page, point.x, point.y)
    page.wait_for_function(
        "(i) => window.__gis.pickedUnit && window.__gis.pickedUnit.idx === i", arg=idx
    )
    page.wait_for_selector(f"#pt-unit:has-text('单元 {idx}')")


def page_table(page: Any) -> dict[int, tuple[str, int]]:
    """The balance table as the page shows it: label → (grid code, households)."""
    rows = page.locator("#pt-table tr[data-label]").evaluate_all(
        "(trs) => trs.map((tr) => [Number(tr.dataset.label), tr.dataset.code,"
        " Number(tr.children[1].textContent.replace(/,/g, ''))])"
    )
    return {lab: (code, hh) for lab, code, hh in rows}


def run_edit(page: Any, button: str) -> dict[str, Any]:
    """Click an edit button; the page's record of the outcome once the panel is redrawn."""
    page.evaluate("() => { window.__gis.lastEdit = null; }")
    page.click(f"{button}:not([disabled])")
    page.wait_for_function("() => window.__gis.lastEdit !== null", timeout=120_000)
    page.wait_for_selector("#pt-edit-message:not(:empty)")
    page.wait_for_selector("#pt-move-to:not([disabled])")
    edit: dict[str, Any] = page.evaluate("window.__gis.lastEdit")
    return edit


def assert_table_is_db(page: Any, url: str, pid: int) -> dict[int, tuple[str, int, int]]:
    """Page table = grid rows in the DB = sums of their units (households per grid)."""
    db = proposal_grids(url, pid)
    assert all(hh == units for _, hh, units in db.values())
    page.wait_for_function(
        "(n) => document.querySelectorAll('#pt-table tr[data-label]').length === n", arg=len(db)
    )
    assert page_table(page) == {lab: (code, hh) for lab, (code, hh, _) in db.items()}
    return db


def touching_grids(url: str, pid: int, unit: int) -> set[int]:
    """Grids (labels) of the proposal within 1 m of a unit, by PostGIS on the stored units."""
    with psycopg.connect(psycopg_conninfo(url)) as c:
        rows = c.execute(
            """SELECT DISTINCT v.label
               FROM grid_proposal_unit u JOIN grid_proposal_unit v
                 ON v.proposal_id = u.proposal_id AND v.community_code = u.community_code
                AND v.label <> u.label
                AND ST_DWithin(u.geom::geography, v.geom::geography, 1.0)
               WHERE u.proposal_id = %s AND u.community_code = %s AND u.idx = %s""",
            (pid, EDIT_COMMUNITY, unit),
        ).fetchall()
    return {int(r[0]) for r in rows}


def assert_move_offers_only_neighbours(
    page: Any, base: str, url: str, pid: int, unit: int, labels: list[int]
) -> None:
    """The "move into" list holds only grids the picked unit touches (it listed them all).

    Offered grids touch the unit (PostGIS, independent of the page and of the unit graph);
    every other grid of the community is one the API refuses as not bordering the unit.
    """
    offered = {
        int(v)
        for v in page.locator("#pt-move-to option").evaluate_all("(os) => os.map((o) => o.value)")
    }
    others = set(labels) - {labels[unit]}
    assert offered, "no grid offered for a unit that borders another grid"
    assert offered <= touching_grids(url, pid, unit), offered
    left_out = others - offered
    assert left_out, "the community's other grids all border the unit: the test proves nothing"
    for lab in sorted(left_out):
        r = httpx.post(
            f"{base}/grids/proposals/{pid}/edits",
            json={"op": "move", "community_code": EDIT_COMMUNITY, "unit": unit, "to_label": lab},
            headers=auth("a_planner"),
            timeout=60,
        )
        assert r.status_code == 422, (lab, r.text)
        assert "does not border" in r.text, (lab, r.text)


def open_community(page: Any, community: str) -> None:
    page.select_option("#pt-township", TOWNSHIP)
    page.wait_for_selector(f"#pt-community option[value='{community}']", state="attached")
    page.select_option("#pt-community", community)
    page.wait_for_selector("#pt-propose:not([disabled])")


def test_planner_edits_the_proposal_on_the_map(chromium: Any, base: str, own_demo: str) -> None:
    """Move a unit (picked on the map), a refused move, merge, split, then commit."""
    context, page = open_partition_tab(chromium, base, "a_planner")
    page.on("dialog", lambda d: d.accept())
    try:
        open_community(page, EDIT_COMMUNITY)
        page.click("#pt-propose:not([disabled])")
        page.wait_for_selector("#pt-move-to", timeout=180_000)
        proposal = page.evaluate("window.__gis.lastProposal")
        pid = proposal["id"]
        assert proposal["status"] == "ready"
        assert len(proposal["units"]["features"]) > 10
        before = assert_table_is_db(page, own_demo, pid)
        labels, households, nb = unit_graph(own_demo, pid)
        (u, dst), (v, vdst) = find_moves(labels, households, nb)
        src = labels[u]

        # 1. Move a unit picked on the map: both grids' households change by its households.
        pick_unit(page, proposal, u)
        assert_move_offers_only_neighbours(page, base, own_demo, pid, u, labels)
        page.select_option("#pt-move-to", str(dst))
        screenshot(page, "web_partition_edit_pick")
        edit = run_edit(page, "#pt-move")
        assert edit["ok"], edit
        moved = assert_table_is_db(page, own_demo, pid)
        assert moved[src][1] == before[src][1] - households[u]
        assert moved[dst][1] == before[dst][1] + households[u]
        assert "校验通过" in page.inner_text("#pt-edit-message")

        # 2. A move that would cut its grid in two: refused with the API's message, no change.
        labels, households, nb = unit_graph(own_demo, pid)
        (_, _), (v, vdst) = find_moves(labels, households, nb)
        proposal = page.evaluate("window.__gis.lastProposal")
        pick_unit(page, proposal, v)
        page.select_option("#pt-move-to", str(vdst))
        edit = run_edit(page, "#pt-move")
        assert not edit["ok"]
        assert edit["status"] == 422
        r = httpx.post(
            f"{base}/grids/proposals/{pid}/edits",
            json={"op": "move", "community_code": EDIT_COMMUNITY, "unit": v, "to_label": vdst},
            headers=auth("a_planner"),
            timeout=60,
        )
        assert r.status_code == 422
        assert r.json()["detail_zh"] in page.inner_text("#pt-edit-message")
        assert "调整被拒绝" in page.inner_text("#pt-edit-message")
        assert assert_table_is_db(page, own_demo, pid) == moved
        screenshot(page, "web_partition_edit_refused")

        # 3. Merge two adjacent grids: one grid fewer, holding both grids' households.
        a = dst  # (the grid the unit moved into)
        b = next(
            labels[w] for x in range(len(labels)) if labels[x] == a for w in nb[x] if labels[w] != a
        )
        page.select_option("#pt-merge-a", str(a))
        page.select_option("#pt-merge-b", str(b))
        edit = run_edit(page, "#pt-merge")
        assert edit["ok"], edit
        merged = assert_table_is_db(page, own_demo, pid)
        assert len(merged) == len(moved) - 1
        new_a = unit_graph(own_demo, pid)[0][u]
        assert merged[new_a][1] == moved[a][1] + moved[b][1]

        # 4. Split it again: two grids, both one piece, together the merged households.
        page.select_option("#pt-split-grid", str(new_a))
        edit = run_edit(page, "#pt-split")
        assert edit["ok"], edit
        split = assert_table_is_db(page, own_demo, pid)
        assert len(split) == len(merged) + 1
        labels, _, nb = unit_graph(own_demo, pid)
        for lab in split:
            assert one_piece({x for x, y in enumerate(labels) if y == lab}, nb)
        assert sum(hh for _, hh, _ in split.values()) == sum(hh for _, hh, _ in before.values())
        assert "0 个连片" not in page.inner_text("#pt-balance")
        screenshot(page, "web_partition_edit_split")

        # 5. Commit: the current grids are the edited proposal's.
        page.click("#pt-commit:not([disabled])")
        page.wait_for_function("(id) => window.__gis.lastCommit === id", arg=pid, timeout=180_000)
        with psycopg.connect(psycopg_conninfo(own_demo)) as c:
            current = dict(
                c.execute(
                    "SELECT grid_code, households FROM grid"
                    " WHERE valid_to IS NULL AND community_code = %s",
                    (EDIT_COMMUNITY,),
                ).fetchall()
            )
        assert current == {code: hh for code, hh, _ in split.values()}
    finally:
        context.close()


def test_viewer_sees_a_proposal_but_cannot_edit(chromium: Any, base: str) -> None:
    """A viewer opens a planner's proposal: preview and table, every edit control disabled."""
    job = api_post(base, "a_planner", "/grids/proposals", {"communities": [COMMUNITY]})
    for _ in range(180):
        p = api_get(base, "a_planner", f"/grids/proposals/{job['id']}", geometry="false")
        if p["status"] != "running":
            break
        time.sleep(1)
    assert p["status"] == "ready"
    context, page = open_partition_tab(chromium, base, "a_viewer")
    try:
        page.fill("#pt-open-id", str(job["id"]))
        page.click("#pt-open")
        page.wait_for_selector("#pt-table")
        page.wait_for_selector("#pt-move-to")
        for sel in ("#pt-move", "#pt-merge", "#pt-split", "#pt-commit", "#pt-move-to"):
            assert page.is_disabled(sel), sel
        shown = page_table(page)
        assert len(shown) == len(p["grids"]["features"]) > 0
    finally:
        context.close()
    r = httpx.post(
        f"{base}/grids/proposals/{job['id']}/edits",
        json={"op": "split", "community_code": COMMUNITY, "labels": [0]},
        headers=auth("a_viewer"),
        timeout=30,
    )
    assert r.status_code == 403
