"""The web map in a real browser: Debian's Chromium (headless, SwiftShader WebGL) driven by
Playwright against a real uvicorn server on the session demo database.

One browser and one page (admin, 石峰区) for the module; a second context for a user of
another county. Results the page shows are compared with the API and with database rows.
"""

from __future__ import annotations

import io
import math
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import numpy as np
import psycopg
import pytest
import shapely
from shapely.geometry import shape

from gis_service.demo.loader import psycopg_conninfo
from tests.web_support import (
    ARTIFACTS,
    api_get,
    api_post,
    click_lonlat,
    idle,
    jump,
    launch_chromium,
    login_script,
    rendered,
    screenshot,
    wait_map,
    web_server,
)

pytestmark = [pytest.mark.timeout(300)]

VIEWPORT = {"width": 1280, "height": 760}


@pytest.fixture(scope="module")
def base(demo_url: str) -> Iterator[str]:
    with web_server(demo_url) as url:
        yield url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launch_chromium() as browser:
        yield browser


class Console:
    """Console errors, page errors and failed requests of one page."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on(
            "response",
            lambda r: r.status >= 400 and self.errors.append(f"HTTP {r.status} {r.url}"),
        )


@pytest.fixture(scope="module")
def session_page(chromium: Any, base: str) -> Iterator[tuple[Any, Console, float]]:
    context = chromium.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.add_init_script(login_script("a_admin"))
    page = context.new_page()
    console = Console(page)
    t0 = time.monotonic()
    page.goto(f"{base}/#view=planner")
    wait_map(page)
    first = time.monotonic() - t0
    # Navigation to every first-view tile drawn (MapLibre idle), cold browser: the
    # issue's "first map within 2 s" is recorded here, not asserted (machine-dependent;
    # benchmarks/bench_web.py gives the medians). The page's own mark is the same moment
    # on the browser's clock, without the polling of wait_map.
    page.wait_for_function("() => performance.getEntriesByName('gis:idle').length")
    mark = page.evaluate("performance.getEntriesByName('gis:idle')[0].startTime") / 1000
    assert 0 < mark <= first + 0.5
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "first_map_seconds.txt").write_text(
        f"{first:.2f}\npage mark gis:idle {mark:.2f}\n", encoding="utf-8"
    )
    yield page, console, first
    context.close()


@pytest.fixture
def page(session_page: tuple[Any, Console, float]) -> Any:
    return session_page[0]


@pytest.fixture(scope="module")
def db(demo_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        yield c


def switch_view(page: Any, view: str) -> None:
    page.click(f"#views button[data-view='{view}']")
    page.wait_for_function(f"() => window.__gis.view === '{view}'")
    idle(page)


def set_layer(page: Any, name: str, on: bool) -> None:
    box = page.locator(f"#layer-tree input[type=checkbox][data-layer='{name}']")
    if box.is_checked() != on:
        box.click()


def test_page_loads_with_header_and_no_errors(
    session_page: tuple[Any, Console, float], base: str
) -> None:
    page, console, first = session_page
    assert page.title().startswith("应急管理")
    assert page.inner_text("#user-name") == "a_admin"
    assert "系统管理员" in page.inner_text("#user-role")
    assert "石峰区" in page.inner_text("#user-role")
    assert page.evaluate("window.__gis.errors") == []
    assert console.errors == []
    # The layer tree lists every published layer, grouped by theme.
    catalogue = api_get(base, "a_admin", "/layers")["layers"]
    for layer in catalogue:
        assert page.locator(f"#layer-tree [data-layer-row='{layer['name']}']").count() == 1
    groups = page.locator("#layer-tree .group-title").all_inner_texts()
    for theme in ("行政区划", "网格", "企业风险", "隐患", "地质灾害", "森林防火", "避难场所"):
        assert theme in groups
    # Only the page's own folders and the vendored builds are served.
    assert first < 60, f"first map took {first:.1f} s"


def _map_pixels(page: Any) -> Any:
    """The map canvas as the window shows it (RGB)."""
    from PIL import Image

    return Image.open(io.BytesIO(page.locator("#map canvas").screenshot())).convert("RGB")


def test_first_map_is_drawn_whole_in_one_frame(chromium: Any, base: str) -> None:
    """Frames of the half-loaded start view are left undrawn (each a full redraw and a window
    read-back with software GL); the one frame drawn by the first idle is the whole map: the
    map area then holds exactly what a forced redraw draws, and most of the district differs
    from the background (a frame drawn without the tiles' buckets would be empty). The working
    area (sidebar, map, panel) is unpainted while the map is made and shown with that frame."""
    from PIL import ImageChops

    context = chromium.new_context(viewport=VIEWPORT)
    context.add_init_script(login_script("a_admin"))
    # The working area's visibility when the page makes its map (app.js sets window.map).
    context.add_init_script(
        """Object.defineProperty(window, 'map', { configurable: true, set(v) {
            Object.defineProperty(window, 'map', { value: v, writable: true, configurable: true });
            window.__layoutAtMap = getComputedStyle(document.querySelector('main.layout')).visibility;
        } });"""
    )
    page = context.new_page()
    try:
        page.goto(f"{base}/#view=planner")
        page.wait_for_function("() => performance.getEntriesByName('gis:idle').length > 0")
        assert page.evaluate("window.__layoutAtMap") == "hidden"
        assert page.locator("#layer-tree .layer-group").first.is_visible()
        assert page.is_visible("#map canvas")
        first = _map_pixels(page)
        skipped, frames, seconds = page.evaluate(
            """() => { const g = window.__gis, at = (n) => performance.getEntriesByName(n)[0].startTime;
                return [g.framesSkipped, g.framesToIdle, (at('gis:idle') - at('gis:map')) / 1000]; }"""
        )
        page.evaluate("window.__gis.map.triggerRepaint()")
        page.wait_for_timeout(300)
        idle(page)
        again = _map_pixels(page)
    finally:
        context.close()
    assert skipped >= 1
    # One frame drawn, unless the start view took longer than the page waits (START_DRAW_MS).
    assert frames - skipped == 1 or seconds > 5.0, (frames, skipped, seconds)
    assert ImageChops.difference(first, again).getbbox() is None
    background = (0xEE, 0xF0, 0xEC)  # .map in app.css (no background layer)
    pixels = np.asarray(first, dtype=int)
    drawn = int((np.abs(pixels - np.array(background)).max(axis=2) > 30).sum())
    assert drawn > 0.2 * first.width * first.height, drawn


def test_every_layer_renders_features(page: Any, base: str) -> None:
    """Each published layer, switched on in the tree, is drawn where its features are.

    The map goes to one feature of each layer not seen yet; one stop usually shows several.
    """
    switch_view(page, "commander")
    catalogue = {layer["name"]: layer for layer in api_get(base, "a_admin", "/layers")["layers"]}
    for name in catalogue:
        set_layer(page, name, True)
    seen: set[str] = set()
    stops = 0
    for name, layer in catalogue.items():
        if name in seen:
            continue
        items = api_get(base, "a_admin", f"/ogc/collections/{name}/items", limit=1)
        assert items["features"], f"no {name} in the demo"
        geom = shape({k: v for k, v in items["features"][0]["geometry"].items() if k != "crs"})
        if geom.geom_type in ("LineString", "MultiLineString"):
            point = geom.interpolate(0.5, normalized=True)
        else:
            point = geom.representative_point()
        zoom = max(layer["minzoom"], layer.get("aggregated_below") or 0, 14)
        jump(page, point.x, point.y, zoom)
        stops += 1
        seen |= {f["layer"] for f in rendered(page, list(catalogue))}
        assert name in seen, f"{name} not drawn at its own feature"
    assert seen == set(catalogue)
    assert stops < len(catalogue)


def test_unit_labels_are_drawn_once_at_their_label_points(
    page: Any, db: psycopg.Connection[Any]
) -> None:
    """Grids, communities and townships are named from the label-point layers (one point
    per unit, ST_PointOnSurface): no name repeats per tile, each where the database puts it."""
    switch_view(page, "planner")
    lon, lat = db.execute(
        "SELECT ST_X(label_point), ST_Y(label_point) FROM grid WHERE valid_to IS NULL"
        " AND community_code LIKE '430204%' ORDER BY households DESC, grid_code LIMIT 1"
    ).fetchone()
    ids = page.evaluate("() => window.__gis.map.getStyle().layers.map((l) => l.id)")
    assert not {"grids-label", "communities-label", "townships-label"} & set(ids)
    for zoom in (14.2, 15.5):
        jump(page, lon, lat, zoom)
        drawn = page.evaluate(
            """() => window.__gis.map.queryRenderedFeatures({layers: ['grid_labels']})
                .map((f) => [f.properties.grid_code, f.properties.name, f.geometry.coordinates])"""
        )
        codes = [code for code, _, _ in drawn]
        assert codes, zoom
        assert len(codes) == len(set(codes)), f"a grid named twice at zoom {zoom}"
        truth = {
            code: (name, x, y)
            for code, name, x, y in db.execute(
                "SELECT grid_code, name, ST_X(label_point), ST_Y(label_point) FROM grid"
                " WHERE valid_to IS NULL AND grid_code = ANY(%s)",
                (codes,),
            )
        }
        for code, name, (x, y) in drawn:
            assert truth[code][0] == name
            assert (x, y) == pytest.approx(truth[code][1:], abs=2e-5)
    screenshot(page, "web_labels")


def test_enterprise_popup_shows_name_and_risk(
    page: Any, db: psycopg.Connection[Any], base: str
) -> None:
    switch_view(page, "planner")
    row = db.execute(
        "SELECT name, risk_level, ST_X(geom), ST_Y(geom) FROM enterprise"
        " WHERE admin_code LIKE '430204%' AND risk_level = 'red' ORDER BY id LIMIT 1"
    ).fetchone()
    assert row is not None
    name, level, lon, lat = row
    scheme = {s["key"]: s for s in api_get(base, "a_admin", "/schemes")}
    zh = {c["key"]: c["zh_name"] for c in scheme["enterprise_risk_4color"]["classes"]}
    jump(page, lon, lat, 17)
    click_lonlat(page, lon, lat)
    popup = page.locator(".maplibregl-popup")
    popup.wait_for()
    text = popup.inner_text()
    assert name in text
    assert zh[level] in text  # 重大风险
    assert "企业名称" in text
    assert "风险等级" in text
    assert page.evaluate("window.__gis.popup.layer") == "enterprises"


def test_click_fills_locate_panel_like_the_api(
    page: Any, db: psycopg.Connection[Any], base: str
) -> None:
    row = db.execute(
        "SELECT g.grid_code, ST_X(p), ST_Y(p) FROM grid g"
        " CROSS JOIN LATERAL ST_PointOnSurface(g.geom) p"
        " WHERE g.valid_to IS NULL AND g.community_code LIKE '430204%'"
        " AND EXISTS (SELECT 1 FROM grid_assignment a WHERE a.grid_id = g.id)"
        " ORDER BY g.grid_code LIMIT 1 OFFSET 7"
    ).fetchone()
    assert row is not None
    code, lon, lat = row
    page.keyboard.press("Escape")
    jump(page, lon, lat, 15)
    click_lonlat(page, lon, lat)
    page.wait_for_selector("#locate-grid")
    clicked = page.evaluate("window.__gis.lastLocate.input")
    expected = api_get(
        base, "a_admin", "/query/locate", lon=clicked["lon"], lat=clicked["lat"], crs="cgcs2000"
    )
    # The click lands a few pixels from the point: same grid as the point itself.
    assert expected["grid"]["grid_code"] == code
    assert page.get_attribute("#locate-grid", "data-grid-code") == code
    panel = page.inner_text("#tab-body")
    assert expected["grid"]["name"] in panel
    assert expected["grid"]["staff"], "the chosen grid has workers"
    for person in expected["grid"]["staff"]:
        assert person["name"] in panel
        assert person["phone"] in panel
    chain = page.locator("#locate-chain span").all_inner_texts()
    assert chain == [d["name"] for d in expected["admin"]]
    assert expected["nearest_shelter"]["name"] in panel


def test_drawn_polygon_counts_equal_the_area_query(
    page: Any, db: psycopg.Connection[Any], base: str
) -> None:
    row = db.execute(
        "SELECT ST_X(geom), ST_Y(geom) FROM enterprise WHERE admin_code LIKE '430204001%'"
        " ORDER BY id LIMIT 1"
    ).fetchone()
    assert row is not None
    jump(page, row[0], row[1], 14)
    page.click("#toolbar button[data-tool='polygon']")
    box = page.locator("#map canvas").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx, dy in ((-220, -160), (230, -170), (250, 150), (-10, 230), (-240, 140)):
        page.mouse.click(cx + dx, cy + dy)
        page.wait_for_timeout(120)
    page.keyboard.press("Enter")
    page.wait_for_selector("#area-totals")
    area = page.evaluate("window.__gis.lastArea")
    geometry = area["geometry"]
    assert geometry["type"] == "Polygon"
    assert len(geometry["coordinates"][0]) == 6
    expected = api_post(base, "a_admin", "/query/area", {"geometry": geometry})
    shown = {
        tr.get_attribute("data-key"): int(tr.locator("td.num").inner_text().replace(",", ""))
        for tr in page.locator("#area-totals tr").all()
    }
    assert shown, "the totals table is empty"
    for key, value in shown.items():
        assert value == expected["totals"][key], key
    assert shown["enterprises"] > 0
    # Independently: the enterprises of the district inside the drawn polygon.
    poly = shape(geometry)
    points = db.execute(
        "SELECT ST_X(geom), ST_Y(geom) FROM enterprise WHERE admin_code LIKE '430204%'"
    ).fetchall()
    inside = shapely.contains_xy(poly, [p[0] for p in points], [p[1] for p in points])
    assert int(inside.sum()) == shown["enterprises"]
    villages = page.locator("#area-villages tr[data-code]").count()
    assert villages == len(expected["by_village"])
    staff = page.locator("#area-staff .person").count()
    assert staff == sum(len(g["staff"]) for g in expected["grids"])
    screenshot(page, "web_area_summary")
    # The XLSX of the same area comes from the API with the token.
    with page.expect_download() as dl:
        page.click("#tab-body button[data-dl='xlsx']")
    assert dl.value.suggested_filename.endswith(".xlsx")
    page.click("#toolbar button[data-tool='clear']")


def test_drawn_circle_counts_equal_the_area_query(page: Any, base: str) -> None:
    jump(page, 113.085, 27.885, 14)
    page.click("#toolbar button[data-tool='circle']")
    box = page.locator("#map canvas").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.click(cx, cy)
    page.mouse.move(cx + 150, cy, steps=5)
    page.mouse.click(cx + 150, cy)
    page.wait_for_selector("#area-totals")
    area = page.evaluate("window.__gis.lastArea")
    assert area["meta"]["kind"] == "circle"
    assert 300 < area["meta"]["radius_m"] < 3000
    ring = area["geometry"]["coordinates"][0]
    assert len(ring) == 65
    expected = api_post(base, "a_admin", "/query/area", {"geometry": area["geometry"]})
    shown = {
        tr.get_attribute("data-key"): int(tr.locator("td.num").inner_text().replace(",", ""))
        for tr in page.locator("#area-totals tr").all()
    }
    assert shown == {k: expected["totals"][k] for k in shown}
    assert shown["buildings"] > 0
    page.click("#toolbar button[data-tool='clear']")


def test_search_gcj02_coordinates_locates_the_converted_point(page: Any, base: str) -> None:
    """Amap/Tencent coordinates typed in the search box go to /query/locate with crs=gcj02."""
    page.select_option("#search-crs", "gcj02")
    page.fill("#search-input", "113.1452, 27.9385")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => window.__gis.lastLocate && window.__gis.lastLocate.input"
        " && window.__gis.lastLocate.input.crs === 'gcj02'"
    )
    page.wait_for_selector("#locate-chain")
    expected = api_get(base, "a_admin", "/query/locate", lon=113.1452, lat=27.9385, crs="gcj02")
    got = page.evaluate("window.__gis.lastLocate")
    assert got["point"] == expected["point"]
    # The converted point is a few hundred metres from the typed one (the GCJ-02 offset).
    dx = (expected["point"][0] - 113.1452) * 111_320 * math.cos(math.radians(27.94))
    dy = (expected["point"][1] - 27.9385) * 110_574
    assert 200 < math.hypot(dx, dy) < 1000
    if expected["grid"]:
        assert page.get_attribute("#locate-grid", "data-grid-code") == expected["grid"]["grid_code"]
    page.select_option("#search-crs", "cgcs2000")


def test_views_switch_layer_presets(page: Any, base: str) -> None:
    catalogue = {layer["name"] for layer in api_get(base, "a_admin", "/layers")["layers"]}
    for view in ("planner", "survey", "commander"):
        switch_view(page, view)
        style = api_get(base, "a_admin", f"/styles/{view}.json")
        wanted = {layer["id"] for layer in style["layers"]} & catalogue
        visible = set(
            page.evaluate(
                """() => window.__gis.map.getStyle().layers
                    .filter((l) => (l.layout || {}).visibility !== 'none').map((l) => l.id)"""
            )
        )
        assert visible & catalogue == wanted, view
        checked = set(
            page.locator("#layer-tree input[type=checkbox]:checked").evaluate_all(
                "(els) => els.map((e) => e.dataset.layer)"
            )
        )
        assert checked == wanted, view
        assert page.locator("#views button.active").get_attribute("data-view") == view
        page.evaluate(
            "() => window.__gis.map.fitBounds([[113.03, 27.85], [113.26, 28.03]], {duration: 0})"
        )
        idle(page)
        if view == "commander":
            colours = {f["properties"]["risk_level"] for f in rendered(page, ["enterprises"])}
            assert colours
            assert colours <= {"red", "orange"}
            page.wait_for_selector("#command-cards")
        if view == "planner":
            page.wait_for_selector("#grid-table")
            assert page.locator("#grid-table tr[data-code]").count() == len(
                api_get(base, "a_admin", "/grids", admin="430204")
            )
        if view == "survey":
            page.wait_for_selector("#quality-table")
        screenshot(page, f"web_view_{view}")


def test_impact_run_through_the_page(page: Any, base: str) -> None:
    """指挥调度 → 影响分析 on a geohazard risk zone: the page shows what the API computes."""
    assert api_get(base, "a_admin", "/web/config.json")["impact"]
    switch_view(page, "commander")
    page.click("#tabs button[data-tab='impact']")
    page.select_option("#im-mode", "zone")
    page.wait_for_selector("#im-zone option[value]:not([value=''])", state="attached")
    zone = page.locator("#im-zone option").nth(1).get_attribute("value")
    page.select_option("#im-zone", zone)
    page.click("#im-run")
    page.wait_for_selector("#impact-villages", timeout=120_000)
    sent = page.evaluate("window.__gis.lastImpact.body")
    assert sent == {"zone_id": int(zone)}
    expected = api_post(base, "a_admin", "/analysis/impact", sent)
    shown = {
        tr.get_attribute("data-key"): int(tr.locator("td.num").inner_text().replace(",", ""))
        for tr in page.locator("#impact-totals tr").all()
    }
    assert shown
    for key, value in shown.items():
        assert value == expected["totals"][key], key
    cards = page.locator("#impact-cards .v").all_inner_texts()
    assert int(cards[0].replace(",", "")) == expected["totals"]["households"]
    assert page.locator("#impact-villages tr[data-code]").count() == len(expected["by_village"])
    assert page.locator("#impact-grids tr[data-code]").count() == len(expected["by_grid"])
    assert page.locator("#impact-contacts .person").count() == len(expected["contacts"])
    assert page.locator("#impact-shelters tr[data-lon]").count() == len(expected["shelters"])
    idle(page)
    screenshot(page, "web_impact")
    with page.expect_download() as dl:
        page.click("#tab-body button[data-im-dl='xlsx']")
    assert dl.value.suggested_filename.endswith(".xlsx")


def test_drawn_area_impact_and_warning(page: Any, base: str) -> None:
    """影响分析 on a drawn polygon, then the same area published as a warning (drawn on the
    map) and analysed again through the warning; the warning is withdrawn afterwards."""
    config = api_get(base, "a_admin", "/web/config.json")
    assert config["impact"]
    assert config["warnings"]
    switch_view(page, "commander")
    jump(page, 113.085, 27.885, 14)
    page.click("#tabs button[data-tab='impact']")
    page.select_option("#im-mode", "draw")
    page.wait_for_selector("#im-draw")
    page.click("#im-draw")
    box = page.locator("#map canvas").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx, dy in ((-150, -120), (160, -110), (140, 130), (-130, 120)):
        page.mouse.click(cx + dx, cy + dy)
        page.wait_for_timeout(120)
    page.keyboard.press("Enter")
    page.wait_for_selector("#impact-villages", timeout=120_000)
    drawn = page.evaluate("window.__gis.lastImpact")
    assert set(drawn["body"]) == {"geometry", "crs"}
    expected = api_post(base, "a_admin", "/analysis/impact", drawn["body"])
    assert drawn["result"]["totals"] == expected["totals"]
    page.fill("#im-wkind", "暴雨红色预警")
    page.select_option("#im-wlevel", "red")
    page.click("#im-warn")
    page.wait_for_function("() => window.__gis.lastWarning")
    warning = page.evaluate("window.__gis.lastWarning")
    try:
        assert warning["properties"]["level"] == "red"
        page.wait_for_selector(
            f"#im-warning option[value='{warning['id']}']:checked", state="attached"
        )
        page.click("#im-run")
        page.wait_for_function(
            f"() => window.__gis.lastImpact.body.warning_id === {warning['id']}", timeout=120_000
        )
        page.wait_for_selector("#impact-villages")
        by_warning = api_post(base, "a_admin", "/analysis/impact", {"warning_id": warning["id"]})
        assert page.evaluate("window.__gis.lastImpact.result.totals") == by_warning["totals"]
        idle(page)
        assert page.evaluate(
            "() => window.__gis.map.queryRenderedFeatures({layers: ['warnings-line']}).length"
        )
    finally:
        httpx.delete(
            f"{base}/warnings/{warning['id']}",
            headers={"Authorization": "Bearer gis_test_a_admin"},
            timeout=30,
        ).raise_for_status()


def test_partition_proposal_preview(page: Any, db: psycopg.Connection[Any], base: str) -> None:
    """网格规划 → 网格划分: propose for one community, see the proposal on the map and in the
    table as the API has it (not committed; the proposal row is removed afterwards)."""
    switch_view(page, "planner")
    page.click("#tabs button[data-tab='partition']")
    page.select_option("#pt-township", "430204001")
    page.wait_for_selector("#pt-community option[value='430204001001']", state="attached")
    page.select_option("#pt-community", "430204001001")
    page.click("#pt-propose:not([disabled])")
    page.wait_for_selector("#pt-table", timeout=120_000)
    proposal = page.evaluate("window.__gis.lastProposal")
    try:
        assert proposal["status"] == "ready"
        expected = api_get(base, "a_admin", f"/grids/proposals/{proposal['id']}")
        rows = page.locator("#pt-table tr[data-code]").evaluate_all(
            "(trs) => trs.map((tr) => [tr.dataset.code, tr.children[1].textContent])"
        )
        want = [
            [f["properties"]["grid_code"], str(f["properties"]["households"])]
            for f in expected["grids"]["features"]
        ]
        assert rows == want
        assert page.is_enabled("#pt-commit")
        idle(page)
        drawn = page.evaluate(
            "() => window.__gis.map.queryRenderedFeatures({layers: ['proposal-fill']}).length"
        )
        assert drawn >= len(want)
        assert "偏差在允许范围内" in page.inner_text("#pt-quality")
        screenshot(page, "web_partition_preview")
    finally:
        db.execute("DELETE FROM grid_proposal WHERE id = %s", (proposal["id"],))
        db.commit()
        page.click("#pt-clear")


def test_search_by_name_and_grid_code(page: Any, db: psycopg.Connection[Any]) -> None:
    name, code = db.execute(
        "SELECT e.name, g.grid_code FROM enterprise e, grid g WHERE e.admin_code LIKE '430204%'"
        " AND g.valid_to IS NULL AND g.community_code LIKE '430204%' ORDER BY e.id, g.grid_code"
        " LIMIT 1"
    ).fetchone()
    page.fill("#search-input", name[2:8])
    page.wait_for_selector("#search-results .item")
    assert name in page.inner_text("#search-results")
    page.evaluate("window.__gis.lastSearch = null")
    page.fill("#search-input", code)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.__gis.lastSearch && window.__gis.lastSearch.length")
    assert page.evaluate("window.__gis.lastSearch[0].sub") == code


def test_search_by_uscc(page: Any, db: psycopg.Connection[Any]) -> None:
    """统一社会信用代码 typed in the search box: the enterprise of that code, highlighted where
    the database has it."""
    uscc, name, lon, lat = db.execute(
        "SELECT uscc, name, ST_X(geom), ST_Y(geom) FROM enterprise"
        " WHERE admin_code LIKE '430204%' AND uscc IS NOT NULL ORDER BY id DESC LIMIT 1"
    ).fetchone()
    page.fill("#search-input", uscc.lower())
    page.keyboard.press("Enter")
    # (an earlier search's debounced answer may still land: wait for this one's)
    page.wait_for_function(
        "(code) => (window.__gis.lastSearch || []).some((r) => r.sub === code)", arg=uscc
    )
    found = page.evaluate("window.__gis.lastSearch.map((r) => [r.tag, r.title, r.sub])")
    assert found == [["企业", name, uscc]]
    page.wait_for_selector(f"#search-results .item:has-text('{uscc}')")
    page.click(f"#search-results .item:has-text('{uscc}')")
    page.wait_for_function(
        "() => window.__gis.state.overlays.highlight.features[0].geometry.type === 'Point'"
    )
    point = page.evaluate("window.__gis.state.overlays.highlight.features[0].geometry")
    assert point["coordinates"] == pytest.approx([lon, lat], abs=1e-9)
    # A code that no enterprise of the area has: said so, no highlight moved.
    page.fill("#search-input", "91430204000000000X")
    page.keyboard.press("Enter")
    page.wait_for_selector("#search-results .msg:has-text('未找到')")


def test_png_export(page: Any) -> None:
    with page.expect_download() as dl:
        page.click("#toolbar button[data-tool='png']")
    assert dl.value.suggested_filename.endswith(".png")
    assert page.evaluate("window.__gis.lastPng") > 20_000


def test_scoped_user_sees_only_their_county(chromium: Any, base: str) -> None:
    context = chromium.new_context(viewport=VIEWPORT)
    context.add_init_script(login_script("b_surveyor"))
    page = context.new_page()
    console = Console(page)
    try:
        page.goto(base)
        wait_map(page)
        assert "福田区" in page.inner_text("#user-role")
        names = page.evaluate("Object.keys(window.__gis.state.catalogue)")
        for name in names:
            set_layer(page, name, True)
        jump(page, 113.14, 27.94, 13)  # 石峰区: someone else's county
        assert rendered(page, names) == []
        jump(page, 114.05, 22.54, 15)
        own = rendered(page, names)
        assert "福田测试化工有限公司" in {f["properties"].get("name") for f in own}
        # Search and locate answer only inside the scope, too.
        page.fill("#search-input", "化工")
        page.wait_for_selector("#search-results .item")
        assert set(page.locator("#search-results .item span:nth-child(2)").all_inner_texts()) == {
            "福田测试化工有限公司"
        }
        assert console.errors == []
    finally:
        context.close()


def test_token_login_form(chromium: Any, base: str) -> None:
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.goto(base)
        page.wait_for_selector("#login:not([hidden])")
        assert page.is_visible("#sidebar")  # the page behind the form is shown, as before
        page.fill("#login-form textarea[name=token]", "not-a-token")
        page.click("#login-form button[type=submit]")
        page.wait_for_function("() => document.querySelector('#login-error').textContent")
        assert "不正确" in page.inner_text("#login-error")
        page.fill("#login-form textarea[name=token]", "gis_test_a_commander")
        page.click("#login-form button[type=submit]")
        wait_map(page)
        assert page.is_hidden("#login")
        assert "指挥长" in page.inner_text("#user-role")
        assert page.locator("#views button.active").get_attribute("data-view") == "commander"
    finally:
        context.close()


CJK = re.compile(r"[\u3400-\u9fff]")


def test_english_toggle_every_fixed_text(chromium: Any, base: str) -> None:
    """The EN button: the choice is kept (localStorage), every fixed text of the header,
    tree, legend, toolbar and each view's panels is English; data (place, grid, firm names)
    stays as recorded. 中文 switches back."""
    context = chromium.new_context(viewport=VIEWPORT)
    context.add_init_script(login_script("a_admin"))
    page = context.new_page()
    console = Console(page)
    try:
        page.goto(f"{base}/#view=planner")
        wait_map(page)
        assert page.inner_text("#views button[data-view='planner']") == "网格规划"
        page.click("#lang")
        page.wait_for_load_state()
        wait_map(page)
        assert page.evaluate("localStorage.getItem('gis-service.lang')") == "en"
        assert page.evaluate("document.documentElement.lang") == "en"
        names = set(page.locator("#views button").all_inner_texts())
        assert names == {"Grid planning", "Risk survey", "Command"}
        # Data the page shows as recorded: the user's area, grid names, hazard-layer titles.
        grids = api_get(base, "a_admin", "/grids", admin="430204")
        hazards = api_get(base, "a_admin", "/hazard-layers")["layers"]
        # (and the button back to Chinese, labelled in Chinese)
        data = {"石峰区", "中文", *(g["name"] for g in grids), *(h["title"] for h in hazards)}

        def fixed_text(selector: str) -> str:
            text = "\n".join(page.locator(selector).all_inner_texts())
            for name in sorted(data, key=len, reverse=True):
                text = text.replace(name, "")
            return text

        for view in ("planner", "survey", "commander"):
            switch_view(page, view)
            for tab in page.locator("#tabs button").all():
                tab.click()
                page.wait_for_timeout(300)
                for sel in ("header", "#sidebar h2", "#layer-tree", "#legend", "#toolbar"):
                    assert not CJK.search(fixed_text(sel)), (view, sel, fixed_text(sel)[:300])
                for sel in (".statusbar", "#tabs", "#tab-body h3, #tab-body th, #tab-body label"):
                    assert not CJK.search(fixed_text(sel)), (view, sel, fixed_text(sel)[:300])
                assert not CJK.search(fixed_text("#tab-body button, #tab-body .note")), view
            screenshot(page, f"web_en_{view}")
        page.click("#lang")
        page.wait_for_load_state()
        wait_map(page)
        assert page.inner_text("#views button[data-view='planner']") == "网格规划"
        assert page.evaluate("localStorage.getItem('gis-service.lang')") == "zh"
        assert console.errors == []
    finally:
        context.close()


def test_password_login_form(chromium: Any, base: str, db: psycopg.Connection[Any]) -> None:
    """With POST /auth/login mounted, the login form takes a login name and a password."""
    from gis_service.domain.users import hash_password

    assert api_get(base, "a_admin", "/web/config.json")["password_login"]
    (user_id,) = db.execute("SELECT id FROM app_user WHERE login = 'a_viewer'").fetchone()
    db.execute(
        "INSERT INTO user_password (user_id, hash) VALUES (%s, %s)",
        (user_id, hash_password("correct horse battery")),
    )
    db.commit()
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.goto(base)
        page.wait_for_selector("#login-password:not([hidden])")
        page.fill("#login-form input[name=login]", "a_viewer")
        page.fill("#login-form input[name=password]", "correct horse battery")
        page.click("#login-form button[type=submit]")
        wait_map(page)
        assert page.inner_text("#user-name") == "a_viewer"
        assert "查看者" in page.inner_text("#user-role")
        token = page.evaluate("sessionStorage.getItem('gis-service.token')")
        assert token
        assert not token.startswith("gis_test_")
    finally:
        context.close()
        db.execute("DELETE FROM auth_token WHERE user_id = %s", (user_id,))
        db.execute("DELETE FROM user_password WHERE user_id = %s", (user_id,))
        db.execute("DELETE FROM auth_failure WHERE login = 'a_viewer'")
        db.commit()


def test_no_console_errors_during_the_session(session_page: tuple[Any, Console, float]) -> None:
    _, console, _ = session_page
    assert console.errors == []
