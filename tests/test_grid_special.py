"""Street-following, hard barriers and 专属网格 through the database, on the demo district.

Every test runs inside one SQLAlchemy transaction on the shared demo database and rolls
it back (proposals, crossings and commits leave nothing behind). The figures the service
reports are re-derived with shapely from the stored polygons, the barrier lines and the
feature points.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import Connection, text

from gis_service.crs import gk_zone_epsg
from gis_service.db.engine import make_sync_engine
from gis_service.domain.scope import Principal
from gis_service.errors import InvalidInput
from gis_service.grids import jobs, store
from gis_service.grids.partition import choose_k
from gis_service.types import Role
from tests.fixtures import auth

ADMIN = Principal(login="test", role=Role.admin, scope_code=None)
#: Big communities whose blocks hold many more households than one grid.
BIG = ("430204002001", "430204002002", "430204004004", "430204004005")


@pytest.fixture
def conn(demo_url: str) -> Iterator[Connection]:
    """A transaction on the demo database, rolled back at the end."""
    engine = make_sync_engine(demo_url)
    try:
        with engine.connect() as c:
            tx = c.begin()
            yield c
            tx.rollback()
    finally:
        engine.dispose()


def _run(conn: Connection, codes: tuple[str, ...], **kw: Any) -> tuple[int, dict[str, Any]]:
    req = store.ProposalRequest(codes, codes[0], warm=False, **kw)
    req.check()
    pid = store.create_proposal(conn, req, ADMIN)
    return pid, store.run_proposal(conn, pid, req, workers=1)


def _gk(conn: Connection, code: str) -> Transformer:
    lon = conn.execute(
        text("SELECT ST_X(ST_Centroid(boundary)) FROM admin_division WHERE code = :c"),
        {"c": code},
    ).scalar_one()
    return Transformer.from_crs(4490, gk_zone_epsg(float(lon)), always_xy=True)


def _geoms(conn: Connection, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    rows = conn.execute(text(sql), params).all()
    return [(*r[:-1], shapely.from_wkb(bytes(r[-1]))) for r in rows]


def _to_gk(t: Transformer, g: Any) -> Any:
    return shapely.transform(g, lambda xy: np.c_[t.transform(xy[:, 0], xy[:, 1])])


def test_grid_boundaries_run_along_streets(conn: Connection) -> None:
    """On big demo communities ≥ 65 % of grid boundary length lies on a street or river."""
    pid, q = _run(conn, BIG)
    assert q["within_tolerance_share"] == 1.0
    assert q["one_piece_share"] == 1.0
    inner_len = on_street = 0.0
    for code in BIG:
        t = _gk(conn, code)
        (boundary,) = [
            g for (g,) in _geoms(conn, "SELECT ST_AsBinary(boundary) FROM admin_division"
                                       " WHERE code = :c", c=code)
        ]  # fmt: skip
        boundary = _to_gk(t, boundary)
        grids = [
            _to_gk(t, g)
            for (g,) in _geoms(
                conn,
                "SELECT ST_AsBinary(geom) FROM grid_proposal_grid"
                " WHERE proposal_id = :p AND community_code = :c",
                p=pid,
                c=code,
            )
        ]
        for g in grids:
            assert g.is_valid
        lines = [
            _to_gk(t, g)
            for (g,) in _geoms(
                conn,
                "SELECT ST_AsBinary(l.geom) FROM barrier_line l JOIN admin_division a"
                " ON a.code = :c AND ST_Intersects(l.geom, a.boundary)",
                c=code,
            )
        ]
        inner = shapely.union_all([g.boundary for g in grids]).difference(
            boundary.boundary.buffer(0.5)
        )
        inner_len += inner.length
        on_street += inner.intersection(shapely.union_all(lines).buffer(1.5)).length
    share = on_street / inner_len
    assert share >= 0.65, share
    assert q["boundary_on_barriers_share"] >= 0.65


def _straddling(conn: Connection, pid: int, code: str) -> list[int]:
    """Households of the lesser pieces of grids that a river, rail or major road cuts apart.

    Shapely on the stored polygons: each grid minus the hard lines; every piece but the
    grid's largest is counted with the households of the buildings inside it.
    """
    t = _gk(conn, code)
    hard = [
        _to_gk(t, g)
        for (g,) in _geoms(
            conn,
            "SELECT ST_AsBinary(l.geom) FROM barrier_line l JOIN admin_division a"
            " ON a.code = :c AND ST_Intersects(l.geom, a.boundary)"
            " WHERE l.kind IN ('river', 'rail', 'road_major')",
            c=code,
        )
    ]
    cut = shapely.union_all(hard).buffer(0.5)
    bld = _geoms(
        conn,
        "SELECT households, ST_AsBinary(ST_PointOnSurface(geom)) FROM building"
        " WHERE admin_code = :c",
        c=code,
    )
    pts = shapely.points(np.asarray([_to_gk(t, p).coords[0] for _, p in bld]))
    hh = np.asarray([h for h, _ in bld])
    lesser: list[int] = []
    for (raw,) in _geoms(
        conn,
        "SELECT ST_AsBinary(geom) FROM grid_proposal_grid"
        " WHERE proposal_id = :p AND community_code = :c",
        p=pid,
        c=code,
    ):
        g = _to_gk(t, raw)
        parts = sorted(
            (p for p in shapely.get_parts(g.difference(cut)) if p.area > 0.02 * g.area),
            key=lambda p: -p.area,
        )
        for p in parts[1:]:
            lesser.append(int(hh[shapely.contains(p.buffer(1.0), pts)].sum()))
    return lesser


def test_hard_barriers_only_with_a_crossing_layer(conn: Connection) -> None:
    """Without a crossing layer major roads are cheap cuts; with one, grids stop at them.

    A piece between hard lines too small for a grid of its own (< 360 households) still
    joins a neighbour across a line; nothing bigger is ever joined across one.
    """
    code = "430204005001"  # 13 river/rail/major-road lines
    _pid, soft = _run(conn, (code,))
    assert "regions apart" not in " ".join(soft["per_community"][0]["notes"])
    # a crossing layer exists in the county (a bridge in another community), none here
    conn.execute(
        text(
            "INSERT INTO barrier_crossing (kind, name, geom) SELECT 'bridge', 'test',"
            " ST_PointOnSurface(boundary) FROM admin_division WHERE code = '430204002001'"
        )
    )
    pid_hard, hard = _run(conn, (code,))
    assert "regions apart" in " ".join(hard["per_community"][0]["notes"])
    lesser = _straddling(conn, pid_hard, code)
    assert all(h < 360 for h in lesser), lesser
    assert hard["one_piece_share"] == 1.0
    # the same request without hard barriers is the soft plan again
    pid_off, off = _run(conn, (code,), hard_barriers=False)
    assert off["per_community"][0]["cut_len_m"] == soft["per_community"][0]["cut_len_m"]
    # edits see the same graph the partition saw: fewer edges across the hard lines
    g_hard, _, _ = store.proposal_graph(conn, pid_hard, code)
    g_off, _, _ = store.proposal_graph(conn, pid_off, code)
    assert g_hard.n == g_off.n
    assert len(g_hard.edge_a) < len(g_off.edge_a)
    assert (g_hard.edge_cost >= 1e3 * g_hard.edge_len).any()
    assert not (g_off.edge_cost >= 1e3 * g_off.edge_len).any()


def test_special_grids_pinned_coded_and_committed(conn: Connection) -> None:
    """Schools, a hospital and a large enterprise become 专属网格 outside the balance."""
    code = "430204001002"
    feats = conn.execute(
        text(
            """SELECT 'facility:' || id AS ref, ST_AsBinary(geom) AS wkb FROM facility
               WHERE admin_code = :c AND kind IN ('school', 'hospital')
               UNION ALL
               SELECT 'enterprise:' || id, ST_AsBinary(geom) FROM enterprise
               WHERE admin_code = :c AND employees >= 300"""
        ),
        {"c": code},
    ).all()
    assert len(feats) >= 3
    big = [r.ref for r in feats if r.ref.startswith("enterprise:")]
    pid, q = _run(conn, (code,), special=("school", "hospital", *big))
    view = jobs.proposal_view(conn, pid, ADMIN)
    grids = view["grids"]["features"]
    dedicated = [f for f in grids if f["properties"]["kind"] == "dedicated"]
    basic = [f for f in grids if f["properties"]["kind"] == "basic"]
    assert dedicated
    assert q["special_grids"] == len(dedicated)
    # every feature lies in the dedicated grid that names it
    named = {ref: f for f in dedicated for ref in f["properties"]["special"]}
    assert set(named) == {r.ref for r in feats}
    for r in feats:
        poly = shapely.geometry.shape(named[r.ref]["geometry"])
        assert poly.buffer(1e-7).contains(shapely.from_wkb(bytes(r.wkb))), r.ref
        assert named[r.ref]["properties"]["deviation"] is None
    # the rest is balanced on what is left
    total = sum(h for (h,) in conn.execute(
        text("SELECT households FROM building WHERE admin_code = :c"), {"c": code}
    ).all())  # fmt: skip
    special_hh = sum(f["properties"]["households"] for f in dedicated)
    assert len(basic) == choose_k(float(total - special_hh), 400)
    for f in basic:
        assert abs(f["properties"]["households"] - 400) <= 40, f["properties"]
    # one W→E, N→S sequence over all grids of the community
    codes = sorted(f["properties"]["grid_code"] for f in grids)
    assert codes == [f"{code}{i:03d}" for i in range(1, len(grids) + 1)]
    assert view["bbox"] is not None
    assert view["crs"] == "CRS84"
    # the units of the community, for the map's "move a unit" edits
    units = jobs.proposal_view(conn, pid, ADMIN, geometry=False, units_of=code)["units"]
    props = [u["properties"] for u in units["features"]]
    assert sum(u["households"] for u in props) == total
    assert {u["label"] for u in props} == {f["properties"]["label"] for f in grids}
    assert {r for u in props for r in u["special"]} == set(named)
    with pytest.raises(InvalidInput):
        jobs.proposal_view(conn, pid, ADMIN, units_of="430204002001")
    result = store.commit_proposal(conn, pid, ADMIN)
    assert result["created"] == len(grids)
    rows = conn.execute(
        text(
            "SELECT kind, attributes->'special' AS s FROM grid"
            " WHERE community_code = :c AND valid_to IS NULL AND kind = 'dedicated'"
        ),
        {"c": code},
    ).all()
    assert sorted(ref for r in rows for ref in r.s) == sorted(named)


@pytest.mark.parametrize(
    ("special", "message"),
    [(["bogus"], "bogus"), (["facility:999999999"], "facility:999999999")],
)
def test_bad_special_names_the_field(client: TestClient, special: list[str], message: str) -> None:
    """An unknown kind or a feature outside the communities: 422 naming ``special``."""
    r = client.post(
        "/grids/proposals",
        json={"communities": ["430204001002"], "special": special},
        headers=auth("a_planner"),
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "special"
    assert message in r.text
