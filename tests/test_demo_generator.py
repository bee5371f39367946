"""The synthetic district reproduces the bureau's figures and is geometrically sound."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import shapely

from gis_service.demo.generator import AS_OF, DemoCity, generate, uscc

SEED = 20261122


@pytest.fixture(scope="module")
def city() -> DemoCity:
    return generate("district", seed=SEED)


def col(table, name):
    return np.asarray(table[name])


def geoms(table, name="geom"):
    arr = np.asarray(table[name], dtype=object)
    return arr[~shapely.is_missing(arr)]


def test_all_columns_have_equal_lengths(city):
    for name, table in city.tables().items():
        lengths = {k: len(v) for k, v in table.items()}
        assert len(set(lengths.values())) == 1, (name, lengths)


def test_headline_figures(city):
    s = city.summary()
    assert s["grids"] == 232
    assert abs(s["households"] - 92_800) <= 928
    assert abs(s["population"] - 278_400) <= 2_784
    assert 15_000 <= s["buildings"] <= 35_000
    assert s["enterprises"] == 379
    assert (s["enterprises_blue"], s["enterprises_yellow"]) == (112, 229)
    assert (s["enterprises_orange"], s["enterprises_red"]) == (37, 1)
    assert s["safety_hazards"] == 1056
    assert s["hazards_closed"] == 986
    assert 30 <= s["geohazard_points"] <= 60
    assert 10 <= s["geohazard_zones"] <= 20
    assert 20 <= s["shelters"] <= 40
    assert 10 <= s["forest_patches"] <= 30
    assert 20 <= s["fire_points"] <= 50
    assert 100 <= s["facilities"] <= 200


def test_divisions_hierarchy(city):
    d = city.divisions
    code, level, parent = col(d, "code"), col(d, "level"), list(d["parent_code"])
    assert len(set(code)) == len(code)
    lengths = {"province": 6, "prefecture": 6, "county": 6, "township": 9, "village": 12}
    for c, lv in zip(code, level, strict=True):
        assert len(c) == lengths[lv]
        assert c.isdigit()
    townships = code[level == "township"]
    villages = code[level == "village"]
    assert 5 <= len(townships) <= 8
    assert 50 <= len(villages) <= 75
    assert all(t.startswith("430204") for t in townships)
    for c, lv, p in zip(code, level, parent, strict=True):
        if lv in ("township", "village"):
            assert c.startswith(p)
    seg_t = {int(t[6:]) for t in townships}
    assert all(1 <= s <= 99 or 100 <= s <= 199 for s in seg_t)
    urc = list(d["urban_rural_code"])
    for c, lv, u in zip(code, level, urc, strict=True):
        if lv == "village":
            seg = int(c[9:])
            assert (1 <= seg <= 199) or (200 <= seg <= 399)
            assert u in {"111", "112", "121", "122", "123", "210", "220"}
        else:
            assert u is None
    names = list(d["name"])
    assert {"清水塘街道", "田心街道", "龙头铺镇"} <= set(names)


def _tiles(parent, children, rel=1e-3):
    union = shapely.union_all(children)
    assert union.area == pytest.approx(parent.area, rel=rel)
    assert shapely.symmetric_difference(union, parent).area <= parent.area * rel
    assert shapely.area(children).sum() == pytest.approx(parent.area, rel=rel)


def test_divisions_tile_their_parents(city):
    d = city.divisions
    code, level = col(d, "code"), col(d, "level")
    bnd = np.asarray(d["boundary"], dtype=object)
    county = bnd[code == "430204"][0]
    tw = level == "township"
    _tiles(county, bnd[tw])
    for t in code[tw]:
        kids = bnd[(level == "village") & np.char.startswith(code.astype(str), t)]
        _tiles(bnd[code == t][0], kids)


def test_grids_codes_and_balance(city):
    g = city.grids
    codes = col(g, "grid_code")
    comm = col(g, "community_code")
    assert len(set(codes)) == len(codes) == 232
    assert all(len(c) == 15 and c.isdigit() for c in codes)
    assert all(c[:12] == cc for c, cc in zip(codes, comm, strict=True))
    villages = set(col(city.divisions, "code")[col(city.divisions, "level") == "village"])
    assert set(comm) <= villages
    hh = col(g, "households")
    assert np.mean(np.abs(hh - 400) <= 40) >= 0.95
    assert hh.sum() == np.sum(city.buildings["households"])
    assert set(col(g, "kind")) <= {"basic", "dedicated", "micro"}


def test_grids_tile_each_community(city):
    g, d = city.grids, city.divisions
    gg = np.asarray(g["geom"], dtype=object)
    comm = col(g, "community_code")
    dcode = col(d, "code")
    bnd = np.asarray(d["boundary"], dtype=object)
    for c in np.unique(comm):
        kids = gg[comm == c]
        parent = bnd[dcode == c][0]
        _tiles(parent, kids)
        tree = shapely.STRtree(kids)
        a, b = tree.query(kids, predicate="overlaps")
        over = shapely.area(shapely.intersection(kids[a[a < b]], kids[b[a < b]])).sum()
        assert over <= parent.area * 1e-5  # sub-millimetre slivers from reprojection


def test_buildings_fall_in_exactly_one_grid(city):
    g, b = city.grids, city.buildings
    gg = np.asarray(g["geom"], dtype=object)
    rep = shapely.point_on_surface(np.asarray(b["geom"], dtype=object))
    tree = shapely.STRtree(gg)
    pi, gi = tree.query(rep, predicate="intersects")
    counts = np.bincount(pi, minlength=len(rep))
    assert (counts == 1).all()
    hh = np.bincount(gi, weights=col(b, "households")[pi], minlength=len(gg))
    pop = np.bincount(gi, weights=col(b, "population")[pi], minlength=len(gg))
    assert (hh == col(g, "households")).all()
    assert (pop == col(g, "population")).all()


def test_building_attributes(city):
    b = city.buildings
    use, hh, pop = col(b, "use"), col(b, "households"), col(b, "population")
    assert (hh[~np.isin(use, ["residential", "mixed"])] == 0).all()
    assert (pop >= hh).all()
    assert (pop[hh == 0] == 0).all()
    assert set(col(b, "structure")) <= {"masonry", "reinforced_concrete", "steel", "wood", "other"}
    assert set(use) <= {"residential", "commercial", "industrial", "public", "mixed", "other"}
    assert set(col(b, "year_band")) <= {"pre1980", "1980s", "1990s", "2000s", "2010s", "2020s"}
    assert set(col(b, "urban_rural")) == {"urban", "rural"}
    assert (col(b, "floors") >= 1).all()


def test_all_geometries_valid_and_inside_the_county(city):
    county = np.asarray(city.divisions["boundary"], dtype=object)[
        col(city.divisions, "code") == "430204"
    ][0]
    zone = county.buffer(1e-6)
    shapely.prepare(zone)
    for name, table in city.tables().items():
        for c in ("geom", "boundary", "site"):
            if c not in table:
                continue
            arr = geoms(table, c)
            assert shapely.is_valid(arr).all(), (name, c)
            if name in {"divisions"}:
                continue
            assert shapely.within(arr, zone).all(), (name, c)


def test_geometry_types(city):
    assert set(shapely.get_type_id(geoms(city.buildings))) == {3}
    assert set(shapely.get_type_id(geoms(city.grids))) == {6}
    assert set(shapely.get_type_id(geoms(city.divisions, "boundary"))) == {6}
    assert set(shapely.get_type_id(geoms(city.barrier_lines))) <= {1, 5}
    assert set(col(city.barrier_lines, "kind")) >= {"road_major", "road_minor", "river", "rail"}


def test_people_and_assignments(city):
    p, a = city.persons, city.grid_assignments
    n = len(p["name"])
    phones = col(p, "phone")
    assert len(set(phones)) == n
    assert all(len(x) == 11 and x[:2] in {"13", "15", "18"} for x in phones)
    assert all(len(c) in (6, 9, 12) for c in p["admin_code"])
    role = col(a, "role")
    workers = col(a, "grid_code")[role == "grid_worker"]
    assert sorted(workers) == sorted(col(city.grids, "grid_code"))
    keys = col(a, "person_key")
    assert keys.min() >= 0
    assert keys.max() < n
    leaders: dict[str, set[int]] = {}
    for gc, k, r in zip(col(a, "grid_code"), keys, role, strict=True):
        if r == "grid_leader":
            leaders.setdefault(gc[:12], set()).add(int(k))
    assert all(len(v) == 1 for v in leaders.values())
    assert len(leaders) == len(set(col(city.grids, "community_code")))


def test_enterprises(city):
    e = city.enterprises
    codes = col(e, "uscc")
    assert len(set(codes)) == len(codes)
    assert all(len(c) == 18 for c in codes)
    assert uscc("430204", 5) != uscc("430204", 6)
    flags = {
        "dust_explosion",
        "ammonia_refrigeration",
        "confined_space",
        "hazardous_process",
        "major_hazard_source",
        "in_chemical_park",
    }
    assert all(set(f) <= flags for f in e["special_flags"])
    sectors = set(col(e, "sector"))
    assert {"hazchem", "industry_trade"} <= sectors
    assert all(isinstance(d, dt.date) for d in e["assessed_at"])
    r = city.responsibilities
    high = set(codes[np.isin(col(e, "risk_level"), ["red", "orange"])])
    regulated = set(col(r, "target_code")[col(r, "duty") == "regulator"])
    assert high <= regulated


def test_hazard_ledger(city):
    h = city.safety_hazards
    status = col(h, "status")
    assert (status == "closed").sum() == 986
    assert set(status[status != "closed"]) <= {
        "found",
        "assigned",
        "rectifying",
        "closeout_requested",
    }
    closed_at = list(h["closed_at"])
    assert all((c is not None) == (s == "closed") for c, s in zip(closed_at, status, strict=True))
    found = list(h["found_at"])
    assert all(f.tzinfo is not None and f <= AS_OF for f in found)
    assert all(c is None or f <= c <= AS_OF for f, c in zip(found, closed_at, strict=True))
    overdue = [
        d < AS_OF.date() for d, s in zip(h["deadline"], status, strict=True) if s != "closed"
    ]
    assert any(overdue)
    assert not all(overdue)
    nos = col(h, "hazard_no")
    assert len(set(nos)) == len(nos)
    assert all(n.startswith("430204-") and len(n) == 18 for n in nos)
    ent = set(col(city.enterprises, "uscc"))
    assert all(u is None or u in ent for u in h["enterprise_uscc"])


def test_geohazards_and_responsibilities(city):
    g = city.geohazard_points
    codes = col(g, "code")
    assert len(set(codes)) == len(codes)
    grade = {"I": (1000, 10**9), "II": (500, 1000), "III": (100, 500), "IV": (0, 100)}
    for gr, people in zip(col(g, "danger_grade"), col(g, "threatened_people"), strict=True):
        lo, hi = grade[gr]
        assert lo <= people < hi
    r = city.responsibilities
    for c in codes:
        m = col(r, "target_code") == c
        leads = set(col(r, "level")[m & (col(r, "duty") == "prevention_lead")])
        assert {"county", "township", "village"} <= leads
        assert (m & (col(r, "duty") == "monitor")).sum() >= 1
    # A risk zone shares the chain of the point it was drawn around (readiness reads it).
    for c in col(city.geohazard_zones, "code"):
        m = (col(r, "target_type") == "geohazard_zone") & (col(r, "target_code") == c)
        leads = set(col(r, "level")[m & (col(r, "duty") == "prevention_lead")])
        assert {"county", "township", "village"} <= leads
        assert (m & (col(r, "duty") == "monitor")).sum() >= 1
    patches = set(col(city.forest_patches, "code"))
    rangers = col(r, "target_code")[col(r, "duty") == "ranger"]
    assert set(rangers) == patches
    routes = city.evacuation_routes
    assert set(routes["geohazard_code"]) == set(codes)
    assert set(routes["shelter_name"]) <= set(city.shelters["name"])


def test_fire_points(city):
    f = city.fire_points
    for st, v in zip(f["verification_status"], f["verdict"], strict=True):
        assert (v is None) == (st in ("pending", "dispatched"))
    assert all(0 <= c <= 100 for c in f["confidence"])


def test_determinism(city):
    again = generate("district", seed=SEED)
    assert again.summary() == city.summary()
    b0 = np.asarray(city.buildings["geom"], dtype=object)[0]
    b1 = np.asarray(again.buildings["geom"], dtype=object)[0]
    assert shapely.to_wkb(b0) == shapely.to_wkb(b1)
    assert list(again.persons["name"][:50]) == list(city.persons["name"][:50])
    other = generate("district", seed=SEED + 1)
    assert shapely.to_wkb(np.asarray(other.buildings["geom"], dtype=object)[0]) != shapely.to_wkb(
        b0
    )


def test_unknown_scale():
    with pytest.raises(ValueError, match="unknown scale"):
        generate("planet")  # type: ignore[arg-type]
