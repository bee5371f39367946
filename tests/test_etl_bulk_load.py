"""Append-only imports (buildings): copied straight into the table, and big first loads.

A big first load drops the table's secondary indexes and rebuilds them afterwards; these
tests run that path with the threshold lowered, on a private database holding the demo's
divisions and grids but no buildings.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely
from psycopg import sql

from etl import load
from etl.pipeline import ImportOptions, ImportReport, run_import
from gis_service.demo import loader
from gis_service.settings import load_settings
from tests.fixtures import BUILDING_VALUE_CHECKS, demo_without_buildings

LIMITS = load_settings(environment="test").etl


@pytest.fixture(scope="module")
def empty_city(make_database: Any, demo_city: Any) -> str:
    """The district's divisions, grids and ledgers, without buildings."""
    return demo_without_buildings(make_database, demo_city, "bulk")


@pytest.fixture(scope="module")
def buildings_file(tmp_path_factory: pytest.TempPathFactory, demo_city: Any) -> Path:
    """600 of the demo's buildings, plus one in 深圳 (outside 石峰区), as a GeoPackage."""
    b = demo_city.buildings
    n = 600
    frame = gpd.GeoDataFrame(
        {"结构": list(b["structure"][:n]), "层数": list(b["floors"][:n])},
        geometry=list(b["geom"][:n]),
        crs="EPSG:4490",
    )
    far = frame.iloc[[0]].copy()
    far["geometry"] = far.geometry.translate(xoff=0.9, yoff=-5.3)  # → 福田区, 深圳
    frame = gpd.GeoDataFrame(
        gpd.pd.concat([frame, far], ignore_index=True), geometry="geometry", crs="EPSG:4490"
    )
    path = tmp_path_factory.mktemp("bulk") / "buildings.gpkg"
    frame.to_file(path, engine="pyogrio")
    return path


def _import(url: str, path: Path, **kw: Any) -> ImportReport:
    scope = kw.pop("scope_code", None)
    return run_import(
        url, path, ImportOptions(target="building", **kw), limits=LIMITS, scope_code=scope
    )


def _indexes(url: str) -> set[str]:
    with psycopg.connect(loader.psycopg_conninfo(url)) as c:
        return {
            r[0] for r in c.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'building'")
        }


def _triggers(url: str) -> list[tuple[str, str]]:
    """The building table's triggers: name and full definition (enabled state included)."""
    with psycopg.connect(loader.psycopg_conninfo(url)) as c:
        return [
            (str(r[0]), f"{r[1]} [{r[2]}]")
            for r in c.execute(
                "SELECT tgname, pg_get_triggerdef(oid), tgenabled FROM pg_trigger"
                " WHERE tgrelid = 'building'::regclass AND NOT tgisinternal ORDER BY tgname"
            )
        ]


def _count(url: str) -> int:
    with psycopg.connect(loader.psycopg_conninfo(url)) as c:
        row = c.execute("SELECT count(*) FROM building").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("chunk", [100_000, 100])
def test_scoped_append_refuses_rows_outside_the_area(
    empty_city: str, buildings_file: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """With chunks of 100 the outside row comes after 600 rows were already sent to COPY
    (and the indexes dropped for a big load): the file is still refused whole."""
    before = _indexes(empty_city)
    monkeypatch.setattr(load, "_CHUNK_ROWS", chunk)
    monkeypatch.setattr(load, "BULK_REBUILD_MIN_ROWS", 100)
    report = _import(empty_city, buildings_file, scope_code="430204")
    assert report.status == "failed"
    assert [p.row for p in report.problems] == [601]
    assert "outside your area" in report.problems[0].reason
    assert _count(empty_city) == 0
    assert _indexes(empty_city) == before


def test_big_first_load_rebuilds_indexes_and_stamps_like_sql(
    empty_city: str, buildings_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _indexes(empty_city)
    triggers = _triggers(empty_city)
    assert {"idx_building_geom", "ix_building_admin_code", "ix_building_grid_code"} <= before
    monkeypatch.setattr(load, "BULK_REBUILD_MIN_ROWS", 100)
    monkeypatch.setattr(load, "_CHUNK_ROWS", 128)  # five chunks, the refused row in the last
    report = _import(empty_city, buildings_file, scope_code="430204", skip_bad_rows=True)
    assert report.status == "succeeded", report.as_dict()
    assert (report.rows_inserted, report.rows_rejected) == (600, 1)
    assert "load.index" in report.timings
    assert report.timings["commit"] >= 0  # the commit (file sync) is timed too
    assert _indexes(empty_city) == before
    with psycopg.connect(loader.psycopg_conninfo(empty_city)) as c:
        disabled = c.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'building'::regclass"
            " AND NOT tgisinternal AND tgenabled = 'D'"
        ).fetchall()
    assert disabled == []  # the stamp trigger skipped for the load is back on
    # The triggers dropped for the load are back, with the same definitions.
    assert _triggers(empty_city) == triggers
    with psycopg.connect(loader.psycopg_conninfo(empty_city)) as c:
        mismatched = c.execute(
            "SELECT count(*) FROM building b JOIN gis_stamps('building'::regclass) s USING (id)"
            " WHERE b.admin_code IS DISTINCT FROM s.admin_code"
            " OR b.grid_code IS DISTINCT FROM s.grid_code"
        ).fetchone()
        stamped = c.execute("SELECT count(grid_code) FROM building").fetchone()
        ordered = c.execute(
            "SELECT bool_and(floors IS NOT DISTINCT FROM f) FROM ("
            " SELECT floors, row_number() OVER (ORDER BY id) AS n FROM building) b"
            " JOIN unnest(%s::int[]) WITH ORDINALITY AS u(f, n) USING (n)",
            (list(gpd.read_file(buildings_file)["层数"][:600].astype(int)),),
        ).fetchone()
        uses_index = c.execute(
            "EXPLAIN SELECT id FROM building"
            " WHERE geom && ST_MakeEnvelope(113.1, 27.8, 113.11, 27.81, 4490)"
        ).fetchall()
    assert mismatched == (0,)
    assert stamped is not None
    assert stamped[0] == 600
    assert ordered == (True,)  # ids follow the file's order
    assert any("idx_building_geom" in r[0] for r in uses_index)


def test_a_busy_table_keeps_its_indexes(
    empty_city: str, buildings_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A reader holding the table: the import waits for no one and maintains the indexes."""
    monkeypatch.setattr(load, "BULK_REBUILD_MIN_ROWS", 100)
    inside = tmp_path / "inside.gpkg"  # another file: the same one again would be a no-op
    gpd.read_file(buildings_file).iloc[:600].to_file(inside, engine="pyogrio")
    buildings_file = inside
    with psycopg.connect(loader.psycopg_conninfo(empty_city)) as c:
        c.execute("DELETE FROM building")
        c.commit()
        c.execute("SELECT count(*) FROM building")  # holds ACCESS SHARE until rollback
        done = threading.Event()
        result: list[ImportReport] = []

        def work() -> None:
            result.append(
                _import(empty_city, buildings_file, scope_code="430204", skip_bad_rows=True)
            )
            done.set()

        worker = threading.Thread(target=work)
        worker.start()
        assert done.wait(120)
        c.rollback()
        worker.join()
    report = result[0]
    assert report.status == "succeeded", report.as_dict()
    assert report.rows_inserted == 600
    assert any("in use" in note for note in report.notes), report.notes
    assert _count(empty_city) == 600


def test_a_value_check_not_proven_is_added_back_and_validated(
    empty_city: str, buildings_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Should a rule not hold on the values written (here: a floor count it is told of that
    is out of range), its CHECK comes back validated by the database, not NOT VALID."""
    monkeypatch.setattr(load, "BULK_REBUILD_MIN_ROWS", 100)
    real = load.Loader._written

    def with_a_bad_floor(self: load.Loader, rule: Any) -> Any:
        yield from real(self, rule)
        if rule.columns == ("floors",):
            yield 999

    monkeypatch.setattr(load.Loader, "_written", with_a_bad_floor)
    path = tmp_path / "unproven.gpkg"
    frame = gpd.read_file(buildings_file).iloc[:300]
    frame["备注"] = [f"第{i}栋" for i in range(len(frame))]  # unmatched: kept in attributes
    frame.to_file(path, engine="pyogrio")
    with psycopg.connect(loader.psycopg_conninfo(empty_city)) as c:
        c.execute("DELETE FROM building")
        c.commit()
    report = _import(empty_city, path, scope_code="430204")
    assert report.status == "succeeded", report.as_dict()
    assert any("4 value checks" in note for note in report.notes), report.notes
    with psycopg.connect(loader.psycopg_conninfo(empty_city)) as c:
        state = dict(
            c.execute(
                "SELECT conname, convalidated FROM pg_constraint WHERE conname = ANY(%s)",
                (["ck_building_floors", "ck_building_structure"],),
            ).fetchall()
        )
        notes = [r[0] for r in c.execute("SELECT attributes->>'备注' FROM building ORDER BY id")]
    assert state == {"ck_building_floors": True, "ck_building_structure": False}
    assert notes == [f"第{i}栋" for i in range(300)]


def test_first_load_into_an_empty_table_is_binary_frozen_and_keeps_the_geometry_check(
    empty_city: str, buildings_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A first load truncates the empty table, COPYs in binary (WKB, no hex) with FREEZE and
    skips the ST_IsValid CHECK for the rows the importer proved, and the value CHECKs whose
    rule held on the values written: each is back (NOT VALID) and refuses the next invalid
    write, VALIDATE proves the loaded rows, and every stored geometry equals the file's,
    rounded to 1e-7°, promoted to MultiPolygon."""
    monkeypatch.setattr(load, "BULK_REBUILD_MIN_ROWS", 100)
    frame = gpd.read_file(buildings_file).iloc[:600]
    frame["名称"] = [f"楼栋{i}号·东" for i in range(len(frame))]
    path = tmp_path / "first.gpkg"
    frame.to_file(path, engine="pyogrio")
    with psycopg.connect(loader.psycopg_conninfo(empty_city)) as c:
        c.execute("DELETE FROM building")
        c.commit()
    copied: list[str] = []
    flushing: list[str] = []
    real_copy = psycopg.Cursor.copy

    inserting: list[list[str]] = []

    def spy(self: psycopg.Cursor[Any], statement: Any, *args: Any, **kwargs: Any) -> Any:
        copied.append(statement.as_string(self) if hasattr(statement, "as_string") else statement)
        row = self.connection.execute("SHOW backend_flush_after").fetchone()
        flushing.append("" if row is None else str(row[0]))
        inserting.append(
            [
                str(r[0])
                for r in self.connection.execute(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'building'::regclass"
                    " AND NOT tgisinternal AND (tgtype & 4) = 4 ORDER BY 1"  # INSERT
                )
            ]
        )
        return real_copy(self, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", spy)
    report = _import(empty_city, path, scope_code="430204")
    assert report.status == "succeeded", report.as_dict()
    assert report.rows_inserted == 600
    assert any("(FORMAT BINARY, FREEZE)" in s for s in copied), copied
    # The unlogged new files go to the kernel's writeback as COPY writes them (a shorter
    # sync at commit).
    frozen = copied.index(next(s for s in copied if "FREEZE" in s))
    assert flushing[frozen] == "256kB"
    # No INSERT trigger exists while COPY runs (a disabled one would still make COPY insert
    # row by row, or fill its transition table); they are back afterwards.
    assert inserting[frozen] == []
    assert {"building_stamp", "building_audit", "building_tiles_ins"} <= {
        name for name, _ in _triggers(empty_city)
    }
    assert any("proven by the importer" in note for note in report.notes), report.notes
    assert any("5 value checks" in note for note in report.notes), report.notes
    with psycopg.connect(loader.psycopg_conninfo(empty_city)) as c:
        check = c.execute(
            "SELECT convalidated, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conname = 'ck_building_geom_valid'"
        ).fetchone()
        assert check is not None
        assert check[0] is False
        assert "st_isvalid(geom)" in check[1].lower()
        rows = c.execute(
            "SELECT name, ST_AsBinary(geom), attributes, source_crs FROM building ORDER BY id"
        ).fetchall()
        with pytest.raises(psycopg.errors.CheckViolation):
            c.execute(
                "INSERT INTO building (geom) VALUES (ST_Multi(ST_GeomFromText("
                "'POLYGON((113.1 27.8, 113.2 27.9, 113.2 27.8, 113.1 27.9, 113.1 27.8))', 4490)))"
            )
        c.rollback()
        c.execute("ALTER TABLE building VALIDATE CONSTRAINT ck_building_geom_valid")
        c.commit()
        # The plain value CHECKs were proven on the written values: back NOT VALID, still
        # refusing a bad write, and VALIDATE finds the loaded rows good.
        value_checks = dict(
            c.execute(
                "SELECT conname, convalidated FROM pg_constraint WHERE conrelid ="
                " 'building'::regclass AND contype = 'c' AND conname <> 'ck_building_geom_valid'"
            ).fetchall()
        )
        # Columns the file has (结构, 层数) and the ones the importer fills (stamps, CRS);
        # the others were not written by the file and stayed checked by the database.
        proven = {
            "ck_building_admin_code_village",
            "ck_building_grid_code_15",
            "ck_building_source_crs",
            "ck_building_structure",
            "ck_building_floors",
        }
        assert value_checks == {name: name not in proven for name in BUILDING_VALUE_CHECKS}
        with pytest.raises(psycopg.errors.CheckViolation):
            c.execute("UPDATE building SET floors = 500 WHERE id = (SELECT min(id) FROM building)")
        c.rollback()
        for name in value_checks:
            c.execute(
                sql.SQL("ALTER TABLE building VALIDATE CONSTRAINT {}").format(sql.Identifier(name))
            )
        c.commit()
        # The primary key, rebuilt after the load, and ids reserved at once: consecutive in
        # file order, and the sequence goes on after them.
        ids = [r[0] for r in c.execute("SELECT id FROM building ORDER BY id").fetchall()]
        pk = c.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'building'::regclass AND contype = 'p'"
        ).fetchone()
        following = c.execute(
            "INSERT INTO building (geom) SELECT geom FROM building WHERE id = %s RETURNING id",
            (ids[0],),
        ).fetchone()
        c.rollback()
    assert pk == ("PRIMARY KEY (id)",)
    assert ids == list(range(ids[0], ids[0] + 600))
    assert following is not None
    assert following[0] > ids[-1]
    expected = shapely.set_precision(np.asarray(frame.geometry), 0)  # same shapes
    expected = shapely.transform(expected, lambda xy: np.round(xy, 7))
    stored = shapely.from_wkb([r[1] for r in rows])
    assert [r[0] for r in rows] == list(frame["名称"])
    # Every column of the file was matched: ``attributes`` was left to its default.
    assert all(r[2] == {} for r in rows)
    assert not any('"attributes"' in s for s in copied if "FREEZE" in s), copied
    assert set(shapely.get_type_id(stored).tolist()) == {6}  # MultiPolygon
    assert all(
        shapely.equals_exact(shapely.get_geometry(s, 0), e, tolerance=0)
        for s, e in zip(stored, expected, strict=True)
    )
    assert {r[3] for r in rows} == {"CGCS2000"}


def test_a_big_load_announces_its_tile_change_once_with_the_written_box(
    empty_city: str, buildings_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-statement tile trigger is dropped during a big load (its transition table would
    hold every row); the importer announces one INSERT change itself: the same log row and
    NOTIFY, with the box of exactly the rows written (not of the refused one in 深圳)."""
    monkeypatch.setattr(load, "BULK_REBUILD_MIN_ROWS", 100)
    monkeypatch.setattr(load, "_CHUNK_ROWS", 128)
    conninfo = loader.psycopg_conninfo(empty_city)
    with psycopg.connect(conninfo) as c:
        c.execute("DELETE FROM building")
        c.execute("DELETE FROM import_batch")
        c.commit()
        row = c.execute("SELECT coalesce(max(id), 0) FROM tile_change").fetchone()
        assert row is not None
        since = int(row[0])
    with psycopg.connect(conninfo, autocommit=True) as listener:
        listener.execute("LISTEN gis_tile_change")
        report = _import(empty_city, buildings_file, scope_code="430204", skip_bad_rows=True)
        assert report.status == "succeeded", report.as_dict()
        assert report.rows_inserted == 600
        heard = [n.payload for n in listener.notifies(timeout=2, stop_after=10)]
    with psycopg.connect(conninfo) as c:
        changes = c.execute(
            "SELECT id, op, min_x, min_y, max_x, max_y FROM tile_change"
            " WHERE id > %s AND table_name = 'building' AND op = 'INSERT'",
            (since,),
        ).fetchall()
        stored = shapely.from_wkb(
            [r[0] for r in c.execute("SELECT ST_AsBinary(geom) FROM building").fetchall()]
        )
        disabled = c.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'building'::regclass"
            " AND NOT tgisinternal AND tgenabled = 'D'"
        ).fetchall()
    assert len(changes) == 1, changes
    box = np.array(changes[0][2:])
    assert np.allclose(box, shapely.total_bounds(stored), rtol=0, atol=1e-9)
    assert box[1] > 27  # the row in 深圳 (y ≈ 22.5) was refused and is not in the box
    assert f"{changes[0][0]}|building|" in "\n".join(heard), heard
    assert disabled == []
