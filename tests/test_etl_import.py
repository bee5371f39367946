"""Imports end to end against the real database: every format, encoding and CRS.

Truth points are village label points of the demo 石峰区; files are written in the test in
each format/encoding/CRS; imported coordinates must come back within 1 m and Chinese text
byte for byte. Failures must leave the table exactly as it was.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from openpyxl import Workbook
from pyproj import Geod

from etl.pipeline import ImportOptions, ImportReport, run_import
from gis_service import crs as gcrs
from gis_service.api.app import create_app
from gis_service.demo.loader import psycopg_conninfo
from gis_service.settings import Settings, load_settings
from tests.fixtures import auth, private_demo


# These tests write to the demo: they get a copy of their own (see ``private_demo``).
@pytest.fixture(scope="module")
def demo_url(make_database: Any, demo_city: Any) -> str:
    """A private copy of the demo database for this module."""
    return private_demo(make_database, demo_city, "writes")


@pytest.fixture(scope="module")
def client(demo_url: str, settings: Settings) -> Iterator[TestClient]:
    """A client of an app on this module's copy of the demo."""
    app = create_app(settings, database_url=demo_url)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


GEOD = Geod(ellps="GRS80")
LIMITS = load_settings().etl
# Text that GBK cannot hold but GB18030 can, plus ordinary names.
NAMES = [
    "株洲石峰化工有限公司",
    "湘江机械厂（二分厂）",
    "龙头铺镇𠀀记烟花店",
    "响石岭建材",
    "田心轨道配件",
    "清水塘精细化工",
]


@pytest.fixture(scope="module")
def truth(demo_url: str) -> list[tuple[float, float]]:
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        rows = c.execute(
            "SELECT ST_X(label_point), ST_Y(label_point) FROM admin_division"
            " WHERE level = 'village' AND code LIKE '430204%' ORDER BY code LIMIT 6"
        ).fetchall()
    return [(float(x), float(y)) for x, y in rows]


def _uscc(prefix: str, i: int) -> str:
    return f"9143020{prefix}{i:010d}"[:18]


def _records(prefix: str, truth: list[tuple[float, float]]) -> list[dict[str, Any]]:
    colours = ["红色", "橙", "黄色", "蓝色", "一般风险", "重大风险"]
    return [
        {
            "企业名称": NAMES[i],
            "统一社会信用代码": _uscc(prefix, i),
            "行业类别": "危险化学品" if i % 2 == 0 else "工贸",
            "风险等级": colours[i],
            "备注": f"第{i}号",
        }
        for i in range(len(truth))
    ]


def _imported(demo_url: str, prefix: str) -> dict[str, tuple[str, float, float, str, str | None]]:
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        rows = c.execute(
            "SELECT uscc, name, ST_X(geom), ST_Y(geom), risk_level, admin_code FROM enterprise"
            " WHERE uscc LIKE %s",
            (f"9143020{prefix}%",),
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3], r[4], r[5]) for r in rows}


def _check(
    demo_url: str, prefix: str, truth: list[tuple[float, float]], n: int | None = None
) -> None:
    got = _imported(demo_url, prefix)
    n = n or len(truth)
    assert len(got) == n
    for i in range(n):
        name, x, y, _, admin = got[_uscc(prefix, i)]
        assert name == NAMES[i]  # byte for byte, including GB18030-only characters
        assert "\ufffd" not in name
        _, _, dist = GEOD.inv(truth[i][0], truth[i][1], x, y)
        assert dist < 1.0, (i, dist)
        assert admin is not None
        assert admin.startswith("430204")


def _import(demo_url: str, path: Path, **kw: Any) -> ImportReport:
    scope = kw.pop("scope_code", None)
    return run_import(
        demo_url,
        path,
        ImportOptions(target="enterprise", **kw),
        limits=LIMITS,
        scope_code=scope,
        actor="test",
    )


def _gdf(prefix: str, truth: list[tuple[float, float]], epsg: int) -> gpd.GeoDataFrame:
    recs = _records(prefix, truth)
    pts = gpd.GeoSeries(gpd.points_from_xy(*zip(*truth, strict=True)), crs="EPSG:4490")
    return gpd.GeoDataFrame(recs, geometry=pts.to_crs(epsg=epsg), crs=f"EPSG:{epsg}")


def _table_digest(demo_url: str, table: str = "enterprise") -> str:
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        row = c.execute(
            f"SELECT count(*), coalesce(md5(string_agg(t::text, '' ORDER BY id)), '') FROM {table} t"
        ).fetchone()
    return hashlib.sha256(repr(row).encode()).hexdigest()


# ----------------------------------------------------------------- formats and CRSs
def test_shapefile_gbk_without_cpg_in_gauss_kruger(
    tmp_path: Path, demo_url: str, truth: list[tuple[float, float]]
) -> None:
    gdf = _gdf("A", truth, 4547)
    gdf = gdf.rename(
        columns={
            "企业名称": "名称",
            "统一社会信用代码": "信用代码",
            "行业类别": "行业",
            "风险等级": "四色等级",
        }
    )
    path = tmp_path / "qiye.shp"
    gdf.to_file(path, encoding="gb18030", engine="pyogrio")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    report = _import(demo_url, path)
    assert report.status == "succeeded", report.as_dict()
    assert report.encoding in ("gb18030", "gbk")
    assert report.source_crs == "GK"
    assert "4547" in (report.crs_label or "")
    _check(demo_url, "A", truth)


def test_zipped_shapefile_with_zone_prefixed_easting_and_no_prj(
    tmp_path: Path, demo_url: str, truth: list[tuple[float, float]]
) -> None:
    gdf = _gdf("B", truth, 4526)  # 3-degree zone 38, zone number in the false easting
    # UTF-8 DBF field names hold 3 Chinese characters at most (10 bytes): use English ones.
    gdf = gdf.rename(
        columns={
            "企业名称": "name",
            "统一社会信用代码": "uscc",
            "行业类别": "sector",
            "风险等级": "risk",
        }
    )
    folder = tmp_path / "shp"
    folder.mkdir()
    gdf.to_file(folder / "qiye.shp", encoding="utf-8", engine="pyogrio")
    (folder / "qiye.prj").unlink()
    archive = tmp_path / "qiye.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in folder.iterdir():
            zf.write(part, arcname=part.name)
    report = _import(demo_url, archive)
    assert report.status == "succeeded", report.as_dict()
    assert any(
        "4526" in n or "zone" in n.lower() or "带" in n
        for n in [*report.notes, report.crs_label or ""]
    )
    _check(demo_url, "B", truth)


def test_geopackage_cgcs2000(
    tmp_path: Path, demo_url: str, truth: list[tuple[float, float]]
) -> None:
    path = tmp_path / "qiye.gpkg"
    _gdf("C", truth, 4490).to_file(path, layer="企业", engine="pyogrio")
    report = _import(demo_url, path)
    assert report.status == "succeeded", report.as_dict()
    assert report.source_crs == "CGCS2000"
    _check(demo_url, "C", truth)


def test_geojson_with_old_crs_member_in_gauss_kruger(
    tmp_path: Path, demo_url: str, truth: list[tuple[float, float]]
) -> None:
    gdf = _gdf("D", truth, 4547)
    fc = json.loads(gdf.to_json())
    fc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4547"}}
    path = tmp_path / "qiye.geojson"
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    report = _import(demo_url, path)
    assert report.status == "succeeded", report.as_dict()
    _check(demo_url, "D", truth)


def test_csv_utf8_bom_in_gcj02(
    tmp_path: Path, demo_url: str, truth: list[tuple[float, float]]
) -> None:
    recs = _records("E", truth)
    lon, lat = gcrs.wgs84_to_gcj02(np.array([p[0] for p in truth]), np.array([p[1] for p in truth]))
    path = tmp_path / "qiye.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*recs[0].keys(), "经度", "纬度"])
        for r, x, y in zip(recs, lon, lat, strict=True):
            w.writerow([*r.values(), f"{x:.7f}", f"{y:.7f}"])
    report = _import(demo_url, path, crs="gcj02")
    assert report.status == "succeeded", report.as_dict()
    assert report.source_crs == "GCJ02"
    _check(demo_url, "E", truth)


def test_csv_gb18030_tab_separated_in_bd09(
    tmp_path: Path, demo_url: str, truth: list[tuple[float, float]]
) -> None:
    recs = _records("F", truth)
    lon, lat = gcrs.wgs84_to_bd09(np.array([p[0] for p in truth]), np.array([p[1] for p in truth]))
    path = tmp_path / "qiye.txt"
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t")
    w.writerow([*recs[0].keys(), "东经", "北纬"])
    for r, x, y in zip(recs, lon, lat, strict=True):
        w.writerow([*r.values(), f"{x:.7f}", f"{y:.7f}"])
    path.write_bytes(buf.getvalue().encode("gb18030"))
    report = _import(demo_url, path, crs="bd09")
    assert report.status == "succeeded", report.as_dict()
    assert report.encoding == "gb18030"
    _check(demo_url, "F", truth)


def test_xlsx_ledger_with_merged_title_rows(
    tmp_path: Path, demo_url: str, truth: list[tuple[float, float]]
) -> None:
    recs = _records("G", truth)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "企业台账"
    ws.append(["石峰区生产经营单位安全风险四色分级台账"])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=7)
    ws.append(["填报单位：石峰区应急管理局", None, None, None, "填报日期：2026年11月"])
    ws.append([*recs[0].keys(), "经度", "纬度"])
    for r, (x, y) in zip(recs, truth, strict=True):
        ws.append([*r.values(), x, y])
    path = tmp_path / "台账.xlsx"
    wb.save(path)
    report = _import(demo_url, path, crs="cgcs2000")
    assert report.status == "succeeded", report.as_dict()
    _check(demo_url, "G", truth)


# --------------------------------------------------------------- merge and reports
def test_reimport_updates_instead_of_duplicating(
    tmp_path: Path, demo_url: str, truth: list[tuple[float, float]]
) -> None:
    path = tmp_path / "qiye.gpkg"
    gdf = _gdf("H", truth, 4490)
    gdf.to_file(path, layer="qiye", engine="pyogrio")
    first = _import(demo_url, path)
    assert (first.status, first.rows_inserted, first.rows_updated) == ("succeeded", 6, 0)
    again = _import(demo_url, path)
    assert again.reused
    assert again.batch_id == first.batch_id
    gdf.loc[0, "风险等级"] = "蓝色"
    path2 = tmp_path / "qiye2.gpkg"
    gdf.to_file(path2, layer="qiye", engine="pyogrio")
    second = _import(demo_url, path2)
    assert (second.status, second.rows_inserted, second.rows_updated) == ("succeeded", 0, 6)
    got = _imported(demo_url, "H")
    assert len(got) == 6
    assert got[_uscc("H", 0)][3] == "blue"


def test_bad_rows_are_reported_with_file_row_numbers_and_nothing_is_written(
    tmp_path: Path, demo_url: str, truth: list[tuple[float, float]]
) -> None:
    before = _table_digest(demo_url)
    path = tmp_path / "bad.csv"
    recs = _records("I", truth)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*recs[0].keys(), "经度", "纬度"])
        for i, (r, (lon, lat)) in enumerate(zip(recs, truth, strict=True)):
            if i == 1:
                r["风险等级"] = "紫色"
            x, y = (float("nan"), lat) if i == 3 else (lat, lon) if i == 4 else (lon, lat)
            w.writerow([*r.values(), x, y])
    report = _import(demo_url, path, crs="wgs84")
    assert report.status == "failed"
    assert sorted({p.row for p in report.problems}) == [3, 5, 6]  # header is line 1
    assert _table_digest(demo_url) == before
    partial = _import(demo_url, path, crs="wgs84", skip_bad_rows=True)
    assert partial.status == "succeeded"
    assert (partial.rows_inserted, partial.rows_rejected) == (3, 3)


def test_rows_outside_the_importers_area_are_refused(
    tmp_path: Path, demo_url: str, truth: list[tuple[float, float]]
) -> None:
    before = _table_digest(demo_url)
    path = tmp_path / "qiye.gpkg"
    _gdf("J", truth, 4490).to_file(path, engine="pyogrio")
    report = _import(demo_url, path, scope_code="440304")
    assert report.status == "failed"
    assert report.rows_rejected == 6
    assert all("area" in p.reason for p in report.problems)
    assert _table_digest(demo_url) == before


def test_a_code_owned_by_another_county_is_never_overwritten(
    tmp_path: Path, demo_url: str, truth: list[tuple[float, float]]
) -> None:
    before = _table_digest(demo_url)
    gdf = _gdf("K", truth[:1], 4490)
    gdf.loc[0, "统一社会信用代码"] = "91440300TEST00001B"  # the 福田 enterprise
    path = tmp_path / "steal.gpkg"
    gdf.to_file(path, engine="pyogrio")
    report = _import(demo_url, path, scope_code="430204")
    assert report.status == "failed"
    assert "outside your area" in report.problems[0].reason
    assert _table_digest(demo_url) == before


def test_dry_run_writes_nothing(
    tmp_path: Path, demo_url: str, truth: list[tuple[float, float]]
) -> None:
    before = _table_digest(demo_url)
    path = tmp_path / "qiye.gpkg"
    _gdf("L", truth, 4490).to_file(path, engine="pyogrio")
    report = _import(demo_url, path, dry_run=True)
    assert (report.status, report.rows_inserted) == ("checked", 6)
    assert _table_digest(demo_url) == before


# ------------------------------------------------------------------ hostile files
def _hostile(tmp_path: Path, name: str) -> Path:
    p = tmp_path / name
    if name == "zip_bomb.zip":
        with (
            zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf,
            zf.open("big.shp", "w", force_zip64=True) as fh,
        ):
            chunk = b"\0" * (1 << 20)
            for _ in range(1024):
                fh.write(chunk)
    elif name == "zip_slip.zip":
        with zipfile.ZipFile(p, "w") as zf:
            zf.writestr("../../evil.shp", b"x" * 100)
    elif name == "random_bytes.gpkg":
        p.write_bytes(bytes(range(256)) * 64)
    elif name == "zip_named.shp":
        with zipfile.ZipFile(p, "w") as zf:
            zf.writestr("a.txt", "hello")
    elif name == "many_columns.csv":
        p.write_text(
            ",".join(f"c{i}" for i in range(3000))
            + "\n"
            + ",".join("1" for _ in range(3000))
            + "\n"
        )
    elif name == "nan_token.geojson":
        p.write_text(
            '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"企业名称":"x"},"geometry":{"type":"Point","coordinates":[NaN, 27.9]}}]}'
        )
    elif name == "truncated.gpkg":
        gdf = gpd.GeoDataFrame(
            {"企业名称": ["x"]}, geometry=[shapely.Point(113.1, 27.9)], crs="EPSG:4490"
        )
        gdf.to_file(p, engine="pyogrio")
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 3])
    elif name == "empty.csv":
        p.write_text("")
    return p


@pytest.mark.parametrize(
    "name",
    [
        "zip_bomb.zip",
        "zip_slip.zip",
        "random_bytes.gpkg",
        "zip_named.shp",
        "many_columns.csv",
        "nan_token.geojson",
        "truncated.gpkg",
        "empty.csv",
    ],
)
def test_hostile_files_leave_the_table_unchanged(tmp_path: Path, demo_url: str, name: str) -> None:
    before = _table_digest(demo_url)
    path = _hostile(tmp_path, name)
    started = time.monotonic()
    report = _import(demo_url, path, crs="wgs84")
    assert time.monotonic() - started < 30
    assert report.status == "failed"
    assert report.error_code
    assert report.error_detail
    assert report.error_detail_zh
    assert _table_digest(demo_url) == before


def test_missing_shapefile_parts_are_named(
    tmp_path: Path, demo_url: str, truth: list[tuple[float, float]]
) -> None:
    before = _table_digest(demo_url)
    for part in (".shx", ".dbf"):
        folder = tmp_path / part.strip(".")
        folder.mkdir()
        _gdf("M", truth, 4490).to_file(folder / "q.shp", engine="pyogrio")
        (folder / f"q{part}").unlink()
        report = _import(demo_url, folder / "q.shp")
        assert report.status == "failed"
        assert part in (report.error_detail or ""), report.error_detail
    assert _table_digest(demo_url) == before


def test_bad_geometries_are_refused_or_repaired_per_row(tmp_path: Path, demo_url: str) -> None:
    before = _table_digest(demo_url, "geohazard_zone")
    x, y = 113.12, 27.90
    polys = [
        shapely.Polygon(
            [(x, y), (x + 0.01, y + 0.01), (x + 0.01, y), (x, y + 0.01)]
        ),  # bow-tie: repaired
        shapely.Polygon([(x, y), (x + 0.01, y), (x + 0.01, y + 0.01), (x, y)]),
        shapely.Polygon([(1e300, y), (x + 0.01, y), (x + 0.01, y + 0.01)]),  # huge coordinate
        shapely.Point(x, y),  # a point in a polygon layer
    ]
    gdf = gpd.GeoDataFrame(
        {
            "编号": ["Z1", "Z2", "Z3", "Z4"],
            "名称": ["甲", "乙", "丙", "丁"],
            "风险等级": ["高", "中", "低", "极高"],
        },
        geometry=polys,
        crs="EPSG:4490",
    )
    path = tmp_path / "zones.geojson"
    gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
    report = run_import(
        demo_url, path, ImportOptions(target="geohazard_zone"), limits=LIMITS, actor="test"
    )
    assert report.status == "failed"
    refused = sorted({p.row for p in report.problems if not p.repaired})
    repaired = sorted({p.row for p in report.problems if p.repaired})
    assert refused == [3, 4]
    assert repaired == [1]
    assert _table_digest(demo_url, "geohazard_zone") == before
    ok = run_import(
        demo_url,
        path,
        ImportOptions(target="geohazard_zone", skip_bad_rows=True),
        limits=LIMITS,
        actor="test",
    )
    assert ok.status == "succeeded", ok.as_dict()
    assert (ok.rows_inserted, ok.rows_repaired) == (2, 1)


# ------------------------------------------------------------------------- HTTP
def test_upload_runs_as_a_job_and_reports(
    client: TestClient, tmp_path: Path, truth: list[tuple[float, float]]
) -> None:
    path = tmp_path / "qiye.gpkg"
    _gdf("N", truth, 4490).to_file(path, engine="pyogrio")
    with path.open("rb") as fh:
        r = client.post(
            "/imports",
            files={"file": ("企业.gpkg", fh, "application/octet-stream")},
            data={"target": "enterprise"},
            headers=auth("a_surveyor"),
        )
    assert r.status_code == 202, r.text
    batch = r.json()["id"]
    deadline = time.monotonic() + 60
    while True:
        report = client.get(f"/imports/{batch}", headers=auth("a_surveyor")).json()
        if report["done"] or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert report["status"] == "succeeded", report
    assert report["rows_inserted"] == 6
    assert report["scope_code"] == "430204"
    assert client.get(f"/imports/{batch}", headers=auth("b_surveyor")).status_code == 404
    assert batch in [b["id"] for b in client.get("/imports", headers=auth("a_viewer")).json()]


def test_upload_roles_and_types(client: TestClient) -> None:
    files = {"file": ("x.csv", b"a,b\n1,2\n", "text/csv")}
    assert (
        client.post(
            "/imports", files=files, data={"target": "enterprise"}, headers=auth("a_viewer")
        ).status_code
        == 403
    )
    bad = client.post(
        "/imports",
        files={"file": ("x.exe", b"MZ", "application/octet-stream")},
        data={"target": "enterprise"},
        headers=auth("a_surveyor"),
    )
    assert bad.status_code == 400


# ------------------------------------------------------------------------ export
@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "csv", "xlsx"])
def test_export_formats_are_scoped(client: TestClient, tmp_path: Path, fmt: str) -> None:
    r = client.get(f"/export/enterprise.{fmt}", headers=auth("b_surveyor"))
    assert r.status_code == 200, r.text
    path = tmp_path / f"out.{'zip' if fmt == 'shp' else fmt}"
    path.write_bytes(r.content)
    if fmt in ("csv", "xlsx"):
        text = r.content.decode("utf-8-sig") if fmt == "csv" else ""
        if fmt == "csv":
            assert "福田测试化工有限公司" in text
            assert "株洲" not in text
        return
    gdf = gpd.read_file(path, engine="pyogrio")
    assert list(gdf["uscc"]) == ["91440300TEST00001B"]


def test_export_in_gcj02_round_trips(client: TestClient, tmp_path: Path, demo_url: str) -> None:
    r = client.get("/export/enterprise.csv?crs=gcj02", headers=auth("a_viewer"))
    assert r.status_code == 200
    assert "gcj02" in r.headers["content-disposition"].lower()
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        truth = dict(
            c.execute(
                "SELECT uscc, ST_AsText(geom) FROM enterprise WHERE admin_code LIKE '430204%'"
            ).fetchall()
        )
    assert len(rows) == len(truth)
    for row in rows[:50]:
        lon, lat = gcrs.gcj02_to_wgs84(float(row["经度"]), float(row["纬度"]))
        p = shapely.from_wkt(truth[row["统一社会信用代码"]])
        assert GEOD.inv(p.x, p.y, lon, lat)[2] < 1.0


def test_export_escapes_spreadsheet_formulas(tmp_path: Path, demo_url: str) -> None:
    from etl.export import export_table

    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        c.execute(
            "UPDATE enterprise SET address = '=HYPERLINK(\"http://x\")' WHERE uscc = '91440300TEST00001B'"
        )
        result = export_table(c, "enterprise", "csv", tmp_path, scope_code="440304")
        c.rollback()
    text = result.path.read_bytes().decode("utf-8-sig")
    assert "'=HYPERLINK" in text


def test_import_targets_catalogue(client: TestClient) -> None:
    catalogue = client.get("/imports/targets", headers=auth("a_viewer")).json()
    assert set(catalogue) >= {"enterprise", "building", "geohazard_point", "shelter", "grid"}
    uscc = next(f for f in catalogue["enterprise"]["fields"] if f["field"] == "uscc")
    assert "统一社会信用代码" in uscc["headers"]
    assert catalogue["enterprise"]["natural_key"] == ["uscc"]
