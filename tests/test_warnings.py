"""Warnings (预警): created from a polygon or admin codes, listed as GeoJSON by validity and
level, scoped by area, refused with the field at fault, and driving an impact run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import mapping, shape

from tests.fixtures import auth

NOW = dt.datetime.now(dt.UTC)


def _village(demo_url: str) -> tuple[str, shapely.Geometry]:
    with psycopg.connect("postgresql://" + demo_url.split("://", 1)[1]) as conn:
        code, wkb = conn.execute(
            "SELECT code, ST_AsBinary(boundary) FROM admin_division WHERE level = 'village'"
            " AND code LIKE '430204%' ORDER BY code LIMIT 1"
        ).fetchone() or ("", b"")
    return code, shapely.from_wkb(bytes(wkb))


@pytest.fixture
def made(client: TestClient) -> Iterator[list[int]]:
    """Ids of warnings a test created; withdrawn afterwards (the demo DB is shared)."""
    ids: list[int] = []
    yield ids
    for i in ids:
        client.delete(f"/warnings/{i}", headers=auth("a_commander"))


def _create(
    client: TestClient, made: list[int], body: dict[str, Any], login: str = "a_commander"
) -> Any:
    r = client.post("/warnings", json=body, headers=auth(login))
    if r.status_code == 201:
        made.append(r.json()["id"])
    return r


def test_polygon_warning_roundtrip(client: TestClient, made: list[int], demo_url: str) -> None:
    _, village = _village(demo_url)
    box = shapely.box(*village.buffer(0.002).bounds)
    r = _create(
        client,
        made,
        {
            "kind": "暴雨红色预警",
            "source_kind": "cma_signal",
            "level": "red",
            "geometry": mapping(box),
            "valid_from": (NOW - dt.timedelta(hours=1)).isoformat(),
            "valid_until": (NOW + dt.timedelta(hours=6)).isoformat(),
            "text": "预计未来6小时降雨量将达100毫米以上",
        },
    )
    assert r.status_code == 201, r.text
    f = r.json()
    assert f["type"] == "Feature"
    assert f["properties"]["level_zh"] == "红色"
    assert f["properties"]["active"] is True
    assert f["properties"]["color"] == "#e60000"
    assert "crs" not in f["geometry"]
    assert shape(f["geometry"]).symmetric_difference(box).area < 1e-4 * box.area
    listed = client.get("/warnings", headers=auth("a_viewer")).json()
    assert f["id"] in [x["id"] for x in listed["features"]]
    reds = client.get("/warnings", params={"level": "red"}, headers=auth("a_viewer")).json()
    assert all(x["properties"]["level"] == "red" for x in reds["features"])
    blues = client.get("/warnings", params={"level": "blue"}, headers=auth("a_viewer")).json()
    assert f["id"] not in [x["id"] for x in blues["features"]]
    # Another county does not see it; the same impact as a drawn polygon.
    other = client.get("/warnings", headers=auth("b_surveyor")).json()
    assert f["id"] not in [x["id"] for x in other["features"]]
    assert client.get(f"/warnings/{f['id']}", headers=auth("b_surveyor")).status_code == 404
    by_warning = client.get(f"/warnings/{f['id']}/impact", headers=auth("a_commander")).json()
    by_polygon = client.post(
        "/analysis/impact", json={"geometry": mapping(box)}, headers=auth("a_commander")
    ).json()
    assert by_warning["totals"] == by_polygon["totals"]
    assert by_warning["footprint"]["kind"] == "warning"


def test_admin_code_warning_and_validity(
    client: TestClient, made: list[int], demo_url: str
) -> None:
    code, village = _village(demo_url)
    r = _create(
        client,
        made,
        {
            "kind": "地质灾害气象风险橙色预警",
            "source_kind": "geohazard_meteo",
            "level": "orange",
            "admin_codes": [code],
            "valid_from": (NOW - dt.timedelta(days=2)).isoformat(),
            "valid_until": (NOW - dt.timedelta(days=1)).isoformat(),
        },
    )
    assert r.status_code == 201, r.text
    f = r.json()
    assert f["properties"]["admin_codes"] == [code]
    assert f["properties"]["active"] is False
    assert shape(f["geometry"]).area == pytest.approx(village.area, rel=1e-3)
    active = client.get("/warnings", headers=auth("a_viewer")).json()
    assert f["id"] not in [x["id"] for x in active["features"]]
    expired = client.get("/warnings", params={"active": "false"}, headers=auth("a_viewer")).json()
    assert f["id"] in [x["id"] for x in expired["features"]]


def test_who_may_issue_and_withdraw(client: TestClient, made: list[int], demo_url: str) -> None:
    code, _ = _village(demo_url)
    body = {"kind": "test", "level": "blue", "admin_codes": [code]}
    assert _create(client, made, body, login="a_viewer").status_code == 403
    r = _create(client, made, body)
    assert r.status_code == 201
    wid = r.json()["id"]
    assert client.delete(f"/warnings/{wid}", headers=auth("a_viewer")).status_code == 403
    assert client.delete(f"/warnings/{wid}", headers=auth("a_commander")).status_code == 204
    made.remove(wid)
    assert client.get(f"/warnings/{wid}", headers=auth("a_commander")).status_code == 404


BOWTIE = {"type": "Polygon", "coordinates": [[[113.1, 27.9], [113.2, 28.0], [113.2, 27.9], [113.1, 28.0], [113.1, 27.9]]]}  # fmt: skip
SHENZHEN = {"type": "Polygon", "coordinates": [[[114.05, 22.52], [114.06, 22.52], [114.06, 22.53], [114.05, 22.52]]]}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"kind": "x", "level": "purple", "admin_codes": ["430204"]}, 422, "body.level"),
        ({"kind": "x", "level": "red"}, 422, "body"),
        ({"kind": "x", "level": "red", "geometry": BOWTIE}, 422, "body.geometry"),
        ({"kind": "x", "level": "red", "geometry": SHENZHEN}, 422, "body.geometry"),
        ({"kind": "x", "level": "red", "admin_codes": ["440304"]}, 404, "body.admin_codes"),
        ({"kind": "x", "level": "red", "admin_codes": ["43020"]}, 422, "body"),
        (
            {
                "kind": "x",
                "level": "red",
                "admin_codes": ["430204"],
                "valid_from": "2026-11-22T10:00:00+08:00",
                "valid_until": "2026-11-22T09:00:00+08:00",
            },
            422,
            "body",
        ),
        (
            {
                "kind": "x",
                "level": "red",
                "admin_codes": ["430204"],
                "valid_from": "2026-11-22T10:00",
            },
            422,
            "body.valid_from",
        ),
        ({"kind": "", "level": "red", "admin_codes": ["430204"]}, 422, "body.kind"),
    ],
)
def test_bad_warnings(
    client: TestClient, made: list[int], body: dict[str, Any], status: int, field: str
) -> None:
    r = _create(client, made, body)
    assert r.status_code == status, r.text
    assert field in r.text


def test_bad_listing_params(client: TestClient) -> None:
    h = auth("a_viewer")
    assert client.get("/warnings", params={"level": "pink"}, headers=h).status_code == 422
    assert client.get("/warnings", params={"bbox": "1,2,3,4"}, headers=h).status_code == 400
    assert client.get("/warnings/0", headers=h).status_code == 422
