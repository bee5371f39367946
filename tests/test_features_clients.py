"""Real OGC clients against a real uvicorn server on a free 127.0.0.1 port: OWSLib's OGC API
Features client (collections, items with bbox and limit, paging) and GDAL's OAPIF driver
(through pyogrio) reading whole collections."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import psycopg
import pyogrio
import pytest
import shapely
from shapely.geometry import box

from tests.fixtures import token
from tests.test_query_oracle import in_scope, read, scope_villages
from tests.web_support import web_server

BOX = (113.10, 27.85, 113.16, 27.90)


@pytest.fixture(scope="module")
def base_url(demo_url: str) -> Iterator[str]:
    """The app served by uvicorn in its own process (GDAL holds the GIL while it fetches)."""
    with web_server(demo_url) as base:
        # GDAL gives the API description (service-desc) one second; build it once beforehand.
        assert httpx.get(f"{base}/openapi.json", timeout=30).status_code == 200
        yield base


def _features(base: str, login: str) -> Any:
    from owslib.ogcapi.features import Features

    return Features(f"{base}/ogc", headers={"Authorization": f"Bearer {token(login)}"})


def test_owslib_collections_bbox_limit_paging(base_url: str, conn: psycopg.Connection[Any]) -> None:
    api = _features(base_url, "a_viewer")
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
        in api.conformance()["conformsTo"]
    )
    ids = {c["id"] for c in api.collections()["collections"]}
    assert {"enterprises", "buildings", "grids", "shelters"} <= ids
    assert api.collection("enterprises")["title"] == "企业（四色）"
    rows = in_scope(read(conn, "building", ("admin_code",)), scope_villages(conn, "430204"))
    want = set(rows.ids[shapely.intersects(rows.geoms, box(*BOX))].tolist())
    got: list[int] = []
    offset = 0
    while True:
        page = api.collection_items("buildings", bbox=list(BOX), limit=400, offset=offset)
        got.extend(f["id"] for f in page["features"])
        if not any(link["rel"] == "next" for link in page["links"]):
            break
        offset += 400
    assert sorted(got) == sorted(want)
    assert page["numberMatched"] == len(want)
    red = api.collection_items("enterprises", filter="risk_level = 'red'", limit=10)
    assert [f["properties"]["risk_level"] for f in red["features"]] == ["red"]


def test_gdal_oapif_reads_whole_collections(base_url: str, conn: psycopg.Connection[Any]) -> None:
    pyogrio.set_gdal_config_options(
        {"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": token("a_viewer")}
    )
    try:
        layers = {name for name, _ in pyogrio.list_layers(f"OAPIF:{base_url}/ogc")}
        assert {"enterprises", "shelters", "grids"} <= layers
        df = pyogrio.read_dataframe(f"OAPIF:{base_url}/ogc", layer="enterprises")
        rows = in_scope(
            read(conn, "enterprise", ("admin_code", "risk_level")), scope_villages(conn, "430204")
        )
        assert len(df) == len(rows.ids) == 379
        assert df["risk_level"].value_counts().to_dict() == {
            "yellow": 229,
            "blue": 112,
            "orange": 37,
            "red": 1,
        }
        # GDAL reads in the storageCrs (Part 2) and applies EPSG:4490's lat/lon axis order.
        assert df.crs is not None
        assert df.crs.to_epsg() == 4490
        xs = df.geometry.x
        assert xs.between(113.0, 113.3).all()
        sh = pyogrio.read_dataframe(f"OAPIF:{base_url}/ogc", layer="grids", bbox=BOX)
        grids = in_scope(
            read(conn, "grid", ("community_code",), "valid_to IS NULL"),
            scope_villages(conn, "430204"),
            "community_code",
        )
        assert len(sh) == int(shapely.intersects(grids.geoms, box(*BOX)).sum())
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_BEARER": None})
