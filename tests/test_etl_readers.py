"""Readers and archive handling against hostile and messy files (BAD_INPUTS C1–C9, C11).

Every fixture is made in the test with pyogrio/geopandas/openpyxl/csv/zipfile and named
after the edge case it covers. Chinese strings must come back byte-exact.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import resource
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS
from shapely.geometry import Point, Polygon

from etl.archive import ArchiveLimits, check_zip, extract_zip, safe_member_name
from etl.model import FileRejected, SourceTable
from etl.readers import geojson_guard, list_layers, read_file
from etl.readers.geojson_guard import check_geojson
from gis_service.errors import TooLarge

NAMES = ["石峰区危险化学品有限公司", "荷塘区加油站", "清水塘化工厂"]
HOSTILE = 'a"; drop table x;--'


def no_replacement_chars(table: SourceTable) -> bool:
    cells = [str(v) for col in table.frame.columns for v in table.frame[col].tolist()]
    return all("\ufffd" not in text for text in [*map(str, table.frame.columns), *cells])


def points(n: int) -> list[Point]:
    return [Point(113.13 + i / 100, 27.83 + i / 100) for i in range(n)]


def write_shp(folder: Path, stem: str, *, encoding: str | None = "gbk") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frame = gpd.GeoDataFrame({"名称": NAMES, "人数": [5, 12, 30]}, geometry=points(3), crs=4490)
    path = folder / f"{stem}.shp"
    frame.to_file(path, engine="pyogrio", encoding=encoding)
    return path


def zip_folder(folder: Path, target: Path, *, prefix: str = "") -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(folder.iterdir()):
            zf.write(file, prefix + file.name)
    return target


def rejected(path: Path, **kwargs: object) -> FileRejected:
    with pytest.raises(FileRejected) as err:
        read_file(path, **kwargs)  # type: ignore[arg-type]
    assert not any(p in err.value.detail for p in ("/tmp", str(path.parent)))  # no paths
    return err.value


# --- Shapefile --------------------------------------------------------------------------


def test_shp_reads_geometry_crs_and_rows(tmp_path: Path) -> None:
    table = read_file(write_shp(tmp_path / "ok", "enterprises"))
    assert table.fmt == "shp"
    assert table.frame["名称"].tolist() == NAMES
    assert table.geometry is not None
    assert [g.x for g in table.geometry] == pytest.approx([113.13, 113.14, 113.15])
    assert table.crs == CRS.from_epsg(4490)
    assert table.source_rows.tolist() == [1, 2, 3]
    assert no_replacement_chars(table)


def test_shp_in_zip_is_read_without_debris(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "src", "企业")
    archive = zip_folder(shp.parent, tmp_path / "shp_in_zip.zip", prefix="数据/")
    with zipfile.ZipFile(archive, "a") as zf:  # what macOS Finder adds
        zf.writestr("__MACOSX/数据/._企业.shp", b"\x00\x05\x16\x07junk")
    table = read_file(archive)
    assert table.frame["名称"].tolist() == NAMES
    assert "shp_in_zip.zip" in table.notes[0]


def test_folder_with_two_shp_lists_both(tmp_path: Path) -> None:
    folder = tmp_path / "folder_with_two_shp"
    write_shp(folder, "roads")
    write_shp(folder, "rivers")
    err = rejected(folder)
    assert "rivers.shp" in err.detail
    assert "roads.shp" in err.detail


def test_folder_with_one_shp(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "folder_with_one_shp", "roads")
    assert read_file(shp.parent).frame["名称"].tolist() == NAMES


@pytest.mark.parametrize("part", [".shx", ".dbf"])
def test_missing_part_is_named(tmp_path: Path, part: str) -> None:
    shp = write_shp(tmp_path / f"missing{part}", "wells")
    shp.with_suffix(part).unlink()
    err = rejected(shp)
    assert err.code == "shapefile_incomplete"
    assert f"wells{part}" in err.detail
    assert f"wells{part}" in err.detail_zh


def test_missing_shx_is_never_restored(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "no_shx", "wells")
    shp.with_suffix(".shx").unlink()
    rejected(shp)
    assert not shp.with_suffix(".shx").exists()


def test_missing_prj_means_unknown_crs_not_an_error(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "no_prj", "wells")
    shp.with_suffix(".prj").unlink()
    table = read_file(shp)
    assert table.crs is None
    assert any(".prj" in note for note in table.notes)


def test_truncated_shp_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "truncated"
    folder.mkdir()
    polygons = [Polygon([(i, 0), (i + 1, 0), (i + 1, 1), (i, 1)]) for i in range(20)]
    frame = gpd.GeoDataFrame({"名称": ["区"] * 20}, geometry=polygons, crs=4490)
    shp = folder / "truncated.shp"
    frame.to_file(shp, engine="pyogrio", encoding="gbk")
    shp.write_bytes(shp.read_bytes()[: shp.stat().st_size // 2])
    err = rejected(shp)
    assert err.code == "shapefile_corrupt"
    assert "truncated" in err.detail


def test_shx_and_dbf_disagreeing_on_record_count(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "mismatch", "mismatch")
    shx = shp.with_suffix(".shx")
    shx.write_bytes(shx.read_bytes()[:-8])
    assert rejected(shp).code == "shapefile_corrupt"


def test_shp_that_is_zip(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "src", "real")
    disguised = zip_folder(shp.parent, tmp_path / "shp_that_is_zip.shp")
    err = rejected(disguised)
    assert err.code == "file_type_mismatch"
    assert ".shp" in err.detail
    assert "zip" in err.detail


def test_sidecar_path_means_the_shapefile(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "sidecar", "wells")
    assert read_file(shp.with_suffix(".dbf")).frame["名称"].tolist() == NAMES


# --- File-type spoofing and paths (C11) -------------------------------------------------


def test_random_bytes_gpkg(tmp_path: Path) -> None:
    path = tmp_path / "random_bytes.gpkg"
    path.write_bytes(np.random.default_rng(7).bytes(4096))
    err = rejected(path)
    assert err.code == "file_type_mismatch"


def test_vrt_xml_disguised_as_geojson(tmp_path: Path) -> None:
    path = tmp_path / "vrt_as.geojson"
    path.write_text('<VRTDataset rasterXSize="1"><VRTRasterBand/></VRTDataset>')
    err = rejected(path)
    assert "xml" in err.detail


def test_tif_is_not_an_accepted_type(tmp_path: Path) -> None:
    path = tmp_path / "vrt_disguised.tif"
    path.write_text("<VRTDataset/>")
    assert rejected(path).code == "unsupported_format"


@pytest.mark.parametrize("text", ["/vsizip//tmp/x.zip/a.shp", "/vsicurl/http://x/a.shp"])
def test_gdal_virtual_paths_and_urls_are_refused(text: str) -> None:
    assert rejected(Path(text)).code == "path_refused"


def test_password_protected_or_xls_workbook(tmp_path: Path) -> None:
    path = tmp_path / "encrypted.xlsx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    err = rejected(path)
    assert "password" in err.detail
    assert rejected(path.rename(tmp_path / "legacy.xls")).code == "file_type_mismatch"


# --- GeoPackage (C7) --------------------------------------------------------------------


def two_layer_gpkg(path: Path) -> Path:
    frame = gpd.GeoDataFrame({"名称": NAMES}, geometry=points(3), crs=4490)
    frame.to_file(path, layer="企业", engine="pyogrio")
    frame.iloc[:2].to_file(path, layer="河流", engine="pyogrio")
    return path


def test_gpkg_with_two_layers_needs_a_choice(tmp_path: Path) -> None:
    path = two_layer_gpkg(tmp_path / "two_layers.gpkg")
    err = rejected(path)
    assert err.code == "layer_required"
    assert "企业" in err.detail
    assert "河流" in err.detail
    assert list_layers(path) == ["企业", "河流"]
    table = read_file(path, layer="河流")
    assert table.layer == "河流"
    assert table.frame["名称"].tolist() == NAMES[:2]
    assert table.crs == CRS.from_epsg(4490)


def test_gpkg_unknown_layer_lists_layers(tmp_path: Path) -> None:
    err = rejected(two_layer_gpkg(tmp_path / "two.gpkg"), layer="道路")
    assert err.code == "unknown_layer"
    assert "企业" in err.detail


def test_truncated_gpkg(tmp_path: Path) -> None:
    path = two_layer_gpkg(tmp_path / "whole.gpkg")
    cut = tmp_path / "truncated.gpkg"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    assert rejected(cut, layer="河流").code in {"file_unreadable", "file_type_mismatch"}


def test_gpkg_is_opened_read_only(tmp_path: Path) -> None:
    path = two_layer_gpkg(tmp_path / "ro.gpkg")
    path.chmod(stat.S_IRUSR)
    before = path.read_bytes()
    read_file(path, layer="企业")
    assert path.read_bytes() == before


# --- GeoJSON (C6) -----------------------------------------------------------------------


def feature_collection(**extra: object) -> dict[str, object]:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"名称": name},
                "geometry": {"type": "Point", "coordinates": [500000.0 + i, 3080000.0]},
            }
            for i, name in enumerate(NAMES)
        ],
        **extra,
    }


@pytest.mark.parametrize(
    ("declared", "epsg"),
    [("EPSG:4547", 4547), ("urn:ogc:def:crs:EPSG::4490", 4490)],
)
def test_geojson_with_old_crs_member(tmp_path: Path, declared: str, epsg: int) -> None:
    path = tmp_path / "old_crs_member.geojson"
    doc = feature_collection(crs={"type": "name", "properties": {"name": declared}})
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    table = read_file(path)
    assert table.crs is not None
    assert table.crs.to_epsg() == epsg
    assert table.frame["名称"].tolist() == NAMES


def test_geojson_without_crs_is_rfc7946_wgs84(tmp_path: Path) -> None:
    """GDAL reports RFC 7946's default as EPSG:4326 (geometries stay x=lon, y=lat)."""
    path = tmp_path / "rfc7946.geojson"
    path.write_text(json.dumps(feature_collection(), ensure_ascii=False), encoding="utf-8")
    table = read_file(path)
    assert table.crs is not None
    assert table.crs.to_epsg() == 4326


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_geojson_with_nonfinite_token(tmp_path: Path, token: str) -> None:
    path = tmp_path / "nan_token.geojson"
    text = json.dumps(feature_collection()).replace("500000.0", token, 1)
    path.write_text(text)
    err = rejected(path)
    assert err.code == "geojson_refused"
    assert "NaN" in err.detail


def test_nan_inside_a_string_is_just_text(tmp_path: Path) -> None:
    path = tmp_path / "nan_in_string.geojson"
    doc = feature_collection()
    doc["features"][0]["properties"]["名称"] = 'NaN "Infinity" [[{'  # type: ignore[index]
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert read_file(path).frame["名称"][0] == 'NaN "Infinity" [[{'


def test_geojson_with_null_geometry_keeps_the_row(tmp_path: Path) -> None:
    path = tmp_path / "null_geometry.geojson"
    doc = feature_collection()
    doc["features"][1]["geometry"] = None  # type: ignore[index]
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    table = read_file(path)
    assert len(table) == 3
    assert table.geometry is not None
    assert table.geometry[1] is None
    assert table.geometry[0] is not None


def test_geojson_nested_10000_deep_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "deep.geojson"
    path.write_text('{"type":"FeatureCollection","features":' + "[" * 10_000 + "]" * 10_000 + "}")
    started = time.perf_counter()
    err = rejected(path)
    assert time.perf_counter() - started < 1
    assert "deeper" in err.detail


def test_geojson_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.geojson"
    path.write_text(json.dumps(feature_collection()))
    with pytest.raises(TooLarge):
        check_geojson(path, max_bytes=100)


def test_geojson_scan_across_chunk_boundaries(tmp_path: Path) -> None:
    """Strings longer than a read chunk, with escapes and brackets, are not tokens."""
    path = tmp_path / "long_strings.geojson"
    doc = feature_collection()
    long_text = ('\\"[{NaN}]' * 300_000)[:2_500_001]
    doc["features"][0]["properties"]["备注"] = long_text  # type: ignore[index]
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    check_geojson(path, max_depth=8)
    path.write_text(json.dumps(doc, ensure_ascii=False)[:-1] + ', "x": NaN}', encoding="utf-8")
    with pytest.raises(FileRejected):
        check_geojson(path)


def test_geojson_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.geojson"
    path.write_bytes(json.dumps(feature_collection(), ensure_ascii=False).encode("gbk"))
    assert "UTF-8" in rejected(path).detail


# --- CSV (C8) ---------------------------------------------------------------------------


def write_csv(path: Path, rows: list[list[str]], *, encoding: str, delimiter: str = ",") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    return path


LEDGER = [
    ["名称", "经度", "纬度", "电话"],
    ["石峰区危险化学品有限公司", "113.123456", "27.85", "0731-2888888"],
    ["清水塘化工厂", "113.20", "27.90", "07310001"],
]


@pytest.mark.parametrize(
    ("encoding", "label"), [("utf-8", "utf-8"), ("utf-8-sig", "utf-8"), ("gbk", "gb18030")]
)
def test_csv_encodings(tmp_path: Path, encoding: str, label: str) -> None:
    path = write_csv(tmp_path / f"ledger_{encoding}.csv", LEDGER, encoding=encoding)
    table = read_file(path)
    assert table.encoding == label
    assert list(table.frame.columns) == LEDGER[0]  # no BOM glued to the first header
    assert table.frame["名称"].tolist() == [LEDGER[1][0], LEDGER[2][0]]
    assert table.frame["电话"].tolist() == ["0731-2888888", "07310001"]  # text, not numbers
    assert table.frame["经度"].tolist() == ["113.123456", "113.20"]
    assert table.source_rows.tolist() == [2, 3]
    assert table.geometry is None
    assert table.crs is None
    assert no_replacement_chars(table)


@pytest.mark.parametrize(("delimiter", "word"), [("\t", "tab"), (";", "semicolon")])
def test_csv_other_delimiters(tmp_path: Path, delimiter: str, word: str) -> None:
    path = write_csv(tmp_path / "ledger.tsv", LEDGER, encoding="utf-8", delimiter=delimiter)
    table = read_file(path)
    assert list(table.frame.columns) == LEDGER[0]
    assert any(word in note for note in table.notes)


def test_csv_line_numbers_skip_blank_lines_and_count_multiline_values(tmp_path: Path) -> None:
    path = tmp_path / "lines.csv"
    path.write_text('\n名称,备注\n甲,"第一行\n第二行"\n\n乙,\n', encoding="utf-8")
    table = read_file(path)
    assert table.source_rows.tolist() == [3, 6]
    assert table.frame["备注"].tolist() == ["第一行\n第二行", None]


def test_csv_with_undecodable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "undecodable.csv"
    path.write_bytes("名称\n".encode() + b"\xff\xfe\xfd\x80\n")
    assert rejected(path).code == "encoding_undetermined"


def test_csv_600_columns(tmp_path: Path) -> None:
    header = [f"列{i}" for i in range(600)]
    path = write_csv(tmp_path / "wide.csv", [header, ["1"] * 600], encoding="utf-8")
    err = rejected(path)
    assert err.code == "too_many_columns"
    assert "600" in err.detail


def test_csv_row_cap(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "long.csv", [["名称"]] + [["x"]] * 11, encoding="utf-8")
    with pytest.raises(TooLarge):
        read_file(path, max_rows=10)


def test_csv_ragged_row_names_its_line(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "ragged.csv", [["a", "b"], ["1", "2"], ["1", "2", "3"]], encoding="utf-8"
    )
    err = rejected(path)
    assert "line 3" in err.detail


def test_hostile_and_duplicate_column_names_are_kept_as_data(tmp_path: Path) -> None:
    header = [HOSTILE, "名称", "名称", "", "select"]
    path = write_csv(
        tmp_path / "hostile.csv", [header, ["1", "2", "3", "4", "5"]], encoding="utf-8"
    )
    table = read_file(path)
    assert list(table.frame.columns) == [HOSTILE, "名称", "名称_2", "列4", "select"]
    assert any("名称_2" in note for note in table.notes)
    assert table.frame[HOSTILE].tolist() == ["1"]


def test_hostile_column_name_in_geojson_and_gpkg(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({HOSTILE: ["x"], "名称": ["甲"]}, geometry=points(1), crs=4490)
    for name in ("hostile.gpkg", "hostile.geojson"):
        frame.to_file(tmp_path / name, engine="pyogrio")
        assert HOSTILE in read_file(tmp_path / name).frame.columns


# --- Excel (C8, C9) ---------------------------------------------------------------------

TITLE = "石峰区危险化学品企业安全风险台账"


def ledger_workbook(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "台账"
    ws["A1"] = TITLE
    ws.merge_cells("A1:E1")
    ws.append(["填报单位：", "石峰区应急管理局", None, "填报日期：", "2024年5月1日"])
    ws.append(["序号", "企业名称", "经度", "从业人数", "检查日期"])
    ws.append([1, NAMES[0], 113.123456, 5.0, dt.datetime(2024, 5, 1)])
    ws.append([2, NAMES[1], 0.1 + 0.2, 12, dt.datetime(2024, 5, 2, 8, 30)])
    ws.append([None] * 5)
    wb.save(path)
    return path


def test_xlsx_with_merged_title_finds_header_on_row_3(tmp_path: Path) -> None:
    table = read_file(ledger_workbook(tmp_path / "merged_title.xlsx"))
    assert table.fmt == "xlsx"
    assert table.layer == "台账"
    assert list(table.frame.columns) == ["序号", "企业名称", "经度", "从业人数", "检查日期"]
    assert table.source_rows.tolist() == [4, 5]
    assert table.frame["企业名称"].tolist() == NAMES[:2]
    assert table.frame["经度"].tolist() == ["113.123456", "0.3"]
    assert table.frame["从业人数"].tolist() == ["5", "12"]
    assert table.frame["检查日期"].tolist() == ["2024-05-01", "2024-05-02T08:30:00"]
    assert any("row 3" in note for note in table.notes)
    assert no_replacement_chars(table)


def test_xlsx_two_row_merged_header(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws["A1"] = TITLE
    ws.merge_cells("A1:F1")
    ws.append(["序号", "企业名称", "坐标", None, "负责人", None])
    ws.append([None, None, "经度", "纬度", "姓名", "电话"])
    ws.merge_cells("A2:A3")
    ws.merge_cells("B2:B3")
    ws.merge_cells("C2:D2")
    ws.merge_cells("E2:F2")
    ws.append([1, NAMES[0], 113.1, 27.8, "张三", "13800000000"])
    ws.append([2, NAMES[1], 113.2, 27.9, "李四", "13900000000"])
    wb.save(tmp_path / "two_row_header.xlsx")
    table = read_file(tmp_path / "two_row_header.xlsx")
    assert list(table.frame.columns) == ["序号", "企业名称", "经度", "纬度", "姓名", "电话"]
    assert any("坐标" in note for note in table.notes)
    assert table.frame["纬度"].tolist() == ["27.8", "27.9"]
    assert table.source_rows.tolist() == [4, 5]
    assert any("two-row header" in note for note in table.notes)


def test_xlsx_repeated_lower_names_keep_their_group(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["企业名称", "负责人", None, "安全员", None])
    ws.append([None, "姓名", "电话", "姓名", "电话"])
    ws.merge_cells("A1:A2")
    ws.merge_cells("B1:C1")
    ws.merge_cells("D1:E1")
    ws.append([NAMES[0], "张三", "1", "李四", "2"])
    wb.save(tmp_path / "groups.xlsx")
    table = read_file(tmp_path / "groups.xlsx")
    assert list(table.frame.columns) == [
        "企业名称", "负责人/姓名", "负责人/电话", "安全员/姓名", "安全员/电话",
    ]  # fmt: skip


def test_xlsx_wide_groups_still_make_a_header(tmp_path: Path) -> None:
    """An upper header row with few labels over wide merged groups is still the header."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["名称", "位置", None, None, "联系", None, None])
    ws.append([None, "经度", "纬度", "高程", "姓名", "电话", "邮箱"])
    for cells in ("A1:A2", "B1:D1", "E1:G1"):
        ws.merge_cells(cells)
    ws.append([NAMES[0], 113.1, 27.8, 50, "张三", "1", "a@b"])
    wb.save(tmp_path / "wide_groups.xlsx")
    table = read_file(tmp_path / "wide_groups.xlsx")
    assert list(table.frame.columns) == ["名称", "经度", "纬度", "高程", "姓名", "电话", "邮箱"]


def test_xlsx_column_number_row_and_merged_data_cells(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["所属街道", "企业名称", "人数"])
    ws.append([1, 2, 3])
    ws.append(["清水塘街道", NAMES[0], 5])
    ws.append([None, NAMES[1], 6])
    ws.merge_cells("A3:A4")
    wb.save(tmp_path / "numbered.xlsx")
    table = read_file(tmp_path / "numbered.xlsx")
    assert table.source_rows.tolist() == [3, 4]
    assert table.frame["所属街道"].tolist() == ["清水塘街道", "清水塘街道"]


def test_xlsx_too_wide_and_too_long(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append([f"列{i}" for i in range(600)])
    ws.append(["1"] * 600)
    wb.save(tmp_path / "wide.xlsx")
    err = rejected(tmp_path / "wide.xlsx")
    assert err.code == "too_many_columns"
    assert "at least" in err.detail
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["名称"])
    for i in range(12):
        ws.append([f"企业{i}"])
    wb.save(tmp_path / "long.xlsx")
    with pytest.raises(TooLarge):
        read_file(tmp_path / "long.xlsx", max_rows=10)
    assert len(read_file(tmp_path / "long.xlsx", max_rows=12)) == 12


def several_sheets(path: Path, *, both_filled: bool) -> Path:
    wb = openpyxl.Workbook()
    first = wb.active
    assert first is not None
    first.title = "说明"
    if both_filled:
        first.append(["说明", "内容"])
        first.append(["a", "b"])
    data = wb.create_sheet("危化企业")
    data.append(["企业名称", "人数"])
    data.append([NAMES[0], 5])
    wb.save(path)
    return path


def test_xlsx_several_sheets_with_data_need_a_choice(tmp_path: Path) -> None:
    path = several_sheets(tmp_path / "several_sheets.xlsx", both_filled=True)
    err = rejected(path)
    assert err.code == "sheet_required"
    assert "说明" in err.detail
    assert "危化企业" in err.detail
    assert list_layers(path) == ["说明", "危化企业"]
    assert read_file(path, sheet="危化企业").frame["企业名称"].tolist() == [NAMES[0]]
    assert rejected(path, sheet="不存在").code == "unknown_sheet"


def test_xlsx_only_one_sheet_with_data_is_chosen(tmp_path: Path) -> None:
    table = read_file(several_sheets(tmp_path / "one_filled.xlsx", both_filled=False))
    assert table.layer == "危化企业"
    assert any("only sheet with data" in note for note in table.notes)


MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
SST_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def billion_laughs_xlsx(path: Path, part: str) -> Path:
    """A real workbook whose worksheet or shared-strings XML declares nested entities."""
    plain = path.with_name("plain.xlsx")
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["名称"])
    wb.save(plain)
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    cell = (
        '<c r="A1" t="s"><v>0</v></c>'
        if part == "sst"
        else ('<c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c>')
    )
    sheet = (
        f'<?xml version="1.0"?><!DOCTYPE worksheet [{entities if part == "sheet" else ""}]>'
        f'<worksheet xmlns="{MAIN_NS}"><sheetData><row r="1">{cell}</row></sheetData></worksheet>'
    )
    sst = (
        f'<?xml version="1.0"?><!DOCTYPE sst [{entities}]><sst xmlns="{MAIN_NS}" count="1" '
        'uniqueCount="1"><si><t>&lol9;</t></si></sst>'
    )
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info).decode()
            if info.filename == "xl/worksheets/sheet1.xml":
                data = sheet
            elif info.filename == "[Content_Types].xml" and part == "sst":
                override = f'<Override PartName="/xl/sharedStrings.xml" ContentType="{SST_TYPE}"/>'
                data = data.replace("</Types>", override + "</Types>")
            dst.writestr(info, data)
        if part == "sst":
            dst.writestr("xl/sharedStrings.xml", sst)
    return path


@pytest.mark.parametrize("part", ["sst", "sheet"])
def test_xlsx_billion_laughs_is_refused_within_a_second(tmp_path: Path, part: str) -> None:
    path = billion_laughs_xlsx(tmp_path / f"billion_laughs_{part}.xlsx", part)
    started = time.perf_counter()
    err = rejected(path)
    assert time.perf_counter() - started < 1
    assert err.code == "xml_entities"


def test_zip_named_xlsx_without_workbook(tmp_path: Path) -> None:
    path = tmp_path / "not_a_workbook.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    assert rejected(path).code == "file_type_mismatch"


# --- Zip archives (C1, C2) --------------------------------------------------------------


def test_zip_bomb_is_refused_quickly_without_extracting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = tmp_path / "zip_bomb.zip"
    chunk = b"\0" * (1 << 22)
    with (
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
        zf.open("bomb.dbf", "w", force_zip64=True) as fh,
    ):
        for _ in range(256):  # 1 GiB of zeros
            fh.write(chunk)
    assert bomb.stat().st_size < 8 * 1024 * 1024
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(TooLarge):
        read_file(bomb)
    assert time.perf_counter() - started < 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 100 * 1024  # KiB
    assert list(scratch.iterdir()) == []  # the private temp dir is gone, nothing written


def test_zip_total_size_cap_counts_real_bytes(tmp_path: Path) -> None:
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.csv", b"x" * 5000)
    with pytest.raises(TooLarge):
        check_zip(path, ArchiveLimits(max_total_bytes=4000))


def test_zip_entry_cap(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(11):
            zf.writestr(f"{i}.txt", "")
    with pytest.raises(TooLarge):
        check_zip(path, ArchiveLimits(max_entries=10))


@pytest.mark.parametrize(
    "name", ["../../evil.shp", "/etc/evil.shp", "C:\\evil.shp", "data/..\\..\\evil.shp"]
)
def test_zip_slip_names_are_refused_and_nothing_is_written(tmp_path: Path, name: str) -> None:
    path = tmp_path / "jobs" / "zip_slip.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ok.csv", "名称\n甲\n")
        zf.writestr(name, b"\x00\x00\x27\x0a")
    before = sorted(tmp_path.rglob("*"))
    err = rejected(path)
    assert err.code == "archive_unsafe_name"
    assert sorted(tmp_path.rglob("*")) == before
    with pytest.raises(FileRejected):
        extract_zip(path, tmp_path / "out")
    assert not (tmp_path / "evil.shp").exists()


def test_safe_member_name_normalises_harmless_names() -> None:
    assert safe_member_name("./data//道路.shp") == "data/道路.shp"


def test_zip_symlink_entry(tmp_path: Path) -> None:
    path = tmp_path / "symlink.zip"
    link = zipfile.ZipInfo("passwd.csv")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(link, "/etc/passwd")
    assert rejected(path).code == "archive_unsafe_name"


def test_nested_zip(tmp_path: Path) -> None:
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("a.csv", "名称\n甲\n")
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(inner, "inner.zip")
        zf.write(inner, "disguised.csv")
    assert rejected(outer).code == "archive_nested"


def test_zip_names_differing_by_case(tmp_path: Path) -> None:
    path = tmp_path / "case.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Data.csv", "a\n1\n")
        zf.writestr("data.csv", "a\n2\n")
    assert rejected(path).code == "archive_unsafe_name"


def test_zip_with_gbk_names_from_windows(tmp_path: Path) -> None:
    """Windows zip tools store GBK names without the UTF-8 flag; zipfile shows cp437."""
    path = tmp_path / "windows.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("xx.csv", "名称\n甲\n".encode())
    path.write_bytes(path.read_bytes().replace(b"xx.csv", "企.csv".encode("gbk")))
    written = extract_zip(path, tmp_path / "out")
    assert [p.name for p in written] == ["企.csv"]
    assert read_file(path).frame["名称"].tolist() == ["甲"]


JSON_TEXT = st.text(alphabet='ab"\\[]{}NaInfity 中\n', max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | JSON_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(JSON_TEXT, inner, max_size=4),
    max_leaves=20,
)


def json_depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((json_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((json_depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=150, deadline=None)
@given(value=JSON_VALUES, chunk=st.integers(min_value=1, max_value=24))
def test_geojson_guard_agrees_with_a_real_parser_at_any_chunk_size(
    value: object, chunk: int
) -> None:
    """Strings full of quotes, escapes, brackets and "NaN" never confuse the scanner."""
    doc = {"type": "FeatureCollection", "features": [], "x": value}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "doc.geojson"
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(geojson_guard, "_CHUNK", chunk)
            depth = max(2, 1 + json_depth(value))  # "features": [] is depth 2
            check_geojson(path, max_depth=depth)
            with pytest.raises(FileRejected):
                check_geojson(path, max_depth=depth - 1)
            path.write_text(json.dumps({**doc, "y": [1, float("nan")]}), encoding="utf-8")
            with pytest.raises(FileRejected):
                check_geojson(path, max_depth=depth + 1)


def test_zip_headers_lying_about_sizes(tmp_path: Path) -> None:
    """Sizes in the headers are not trusted: a short claim ends in a CRC failure."""
    path = tmp_path / "lying_sizes.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ledger.csv", "名称\n" + "甲\n" * 200_000)
    data = bytearray(path.read_bytes())
    local, central = data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02")
    data[local + 22 : local + 26] = (100).to_bytes(4, "little")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert rejected(path).code == "archive_corrupt"


def test_xlsm_macros_are_ignored(tmp_path: Path) -> None:
    plain = ledger_workbook(tmp_path / "plain.xlsx")
    path = tmp_path / "with_macros.xlsm"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0 not run")
    table = read_file(path)
    assert table.frame["企业名称"].tolist() == NAMES[:2]
    assert any("macros" in note for note in table.notes)


def test_sandboxed_read_matches_the_direct_read(tmp_path: Path) -> None:
    """What crosses the process boundary (Arrow text, WKB) comes back as the reader made it."""
    import json

    from etl.pipeline import ImportOptions, read_sandboxed
    from gis_service.settings import load_settings

    bare = tmp_path / "bare.geojson"  # geometry only: no attribute column at all
    bare.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {}, "geometry": None},
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {"type": "Point", "coordinates": [113.1, 27.8]},
                    },
                ],
            }
        ),
        encoding="utf-8",
    )
    mixed = tmp_path / "mixed.gpkg"
    gpd.GeoDataFrame(
        {"名称": ["甲", None, "𠀀丙"], "人数": [5, 12, 30], "面积": [1.5, None, 3.0]},
        geometry=points(3),
        crs=4490,
    ).to_file(mixed, engine="pyogrio")
    limits = load_settings(environment="test").etl
    for path in (bare, mixed):
        direct = read_file(path)
        shipped = read_sandboxed(path, ImportOptions(target="building"), limits)
        assert len(shipped) == len(direct)
        assert list(shipped.frame.columns) == list(direct.frame.columns)
        for header in direct.frame.columns:
            if isinstance(shipped.frame[header].dtype, pd.ArrowDtype):
                # Text stays Arrow after the hand-over; its cells are the reader's strings.
                assert direct.frame[header].dtype == object
                assert shipped.cells(header) == direct.cells(header)
            else:
                pd.testing.assert_series_equal(shipped.frame[header], direct.frame[header])
        if path == mixed:
            assert isinstance(shipped.frame["名称"].dtype, pd.ArrowDtype)
            assert shipped.cells("名称") == ["甲", None, "𠀀丙"]
        assert shipped.geometry is not None
        assert direct.geometry is not None
        assert [g is None for g in shipped.geometry] == [g is None for g in direct.geometry]
        assert all(
            a is None or a.equals(b) for a, b in zip(shipped.geometry, direct.geometry, strict=True)
        )


def test_a_sandboxed_read_sends_its_wkb_batch_by_batch(tmp_path: Path) -> None:
    """A vector file's WKB leaves the child one GDAL batch at a time (the child rounds it
    when the numbers are stored as read, the parent parses one batch while the child reads
    the next), yet the table is the direct read's: row order, missing geometries on both
    sides of a batch edge, rounding."""
    from etl.pipeline import ImportOptions, read_sandboxed
    from etl.portable import STREAMED, read_portable
    from etl.readers.vector import BATCH_ROWS
    from etl.sandbox import run_limited
    from gis_service.settings import load_settings

    n = BATCH_ROWS + 1500
    xy = np.column_stack(
        [113.0 + np.arange(n) * 1e-6 + 1.23456789e-8, 27.5 + np.arange(n) * 2e-6 + 9.87654321e-8]
    )
    geometry: list[Point | None] = list(shapely.points(xy))
    for row in (3, BATCH_ROWS - 1, BATCH_ROWS, n - 1):
        geometry[row] = None
    path = tmp_path / "many.gpkg"
    gpd.GeoDataFrame({"编号": np.arange(n)}, geometry=geometry, crs=4490).to_file(
        path, engine="pyogrio"
    )
    parts: list[tuple[str, Any]] = []
    portable = run_limited(read_portable, str(path), on_part=parts.append, seconds=120)
    assert portable["wkb"] == STREAMED
    assert [kind for kind, _ in parts] == ["crs", "wkb", "wkb"]
    assert [len(value) for _, value in parts[1:]] == [BATCH_ROWS, 1500]
    assert CRS.from_wkt(parts[0][1]).to_epsg() == 4490
    # Asked to round: the child rounds each batch (the file is CGCS2000 lon/lat, stored as read).
    parts.clear()
    run_limited(read_portable, str(path), on_part=parts.append, seconds=120, round_to=7)
    assert [kind for kind, _ in parts] == ["crs", "rounded", "rounded"]
    first, done = parts[1][1]
    assert done.tolist() == [True] * BATCH_ROWS  # a missing geometry counts as done
    got_first = shapely.get_coordinates(shapely.from_wkb(first.to_numpy(zero_copy_only=False)[:3]))
    assert np.array_equal(got_first, np.round(xy[:3], 7))  # rows 0-2 have geometries
    assert not np.array_equal(got_first, xy[:3])
    # Not when the numbers will be transformed (--crs gcj02): the bytes stay as read.
    parts.clear()
    run_limited(
        read_portable, str(path), on_part=parts.append, seconds=120, round_to=7, user_crs="gcj02"
    )
    assert [kind for kind, _ in parts] == ["crs", "wkb", "wkb"]

    limits = load_settings(environment="test").etl
    table = read_sandboxed(path, ImportOptions(target="building"), limits, round_to=7)
    direct = read_file(path)
    assert table.frame["编号"].tolist() == list(range(n))
    assert table.geometry is not None
    assert direct.geometry is not None
    missing = [i for i, g in enumerate(table.geometry) if g is None]
    assert missing == [3, BATCH_ROWS - 1, BATCH_ROWS, n - 1]
    assert table.rounded is not None
    present = [i for i in range(n) if geometry[i] is not None]
    assert table.rounded[present].all()
    # Tested for validity beside the parse: points are valid, a missing geometry is not.
    assert table.valid is not None
    assert table.valid.tolist() == [g is not None for g in geometry]
    got = shapely.get_coordinates(table.geometry[present])
    assert np.array_equal(got, np.round(xy[present], 7))
    assert table.wkb is not None
    assert all(
        shapely.from_wkb(table.wkb[i]).equals(table.geometry[i]) for i in (0, BATCH_ROWS + 1)
    )


def _emit_forever(emit: Any) -> None:
    while True:
        emit(("wkb", b"x" * 1000))


def test_a_streaming_child_is_stopped_when_the_parent_gives_up() -> None:
    """The time limit covers a child that keeps sending, and an error while taking a part
    stops the child and reaches the caller (no half-read table, no stray process)."""
    from etl.sandbox import run_limited

    with pytest.raises(FileRejected) as timed_out:
        run_limited(_emit_forever, on_part=lambda part: None, seconds=1)
    assert timed_out.value.code == "parse_timeout"

    taken: list[Any] = []

    def refuse_the_third(part: Any) -> None:
        taken.append(part)
        if len(taken) == 3:
            raise TooLarge(detail="enough", detail_zh="够了")

    started = time.monotonic()
    with pytest.raises(TooLarge):
        run_limited(_emit_forever, on_part=refuse_the_third, seconds=60)
    assert len(taken) == 3
    assert time.monotonic() - started < 10


def _gdal_skip() -> str | None:
    import os

    return os.environ.get("GDAL_SKIP")


def test_parsing_children_do_not_rerun_the_main_script(tmp_path: Path) -> None:
    """A child must not import the parent's main script again (the ``gis-service`` console
    script would load the whole CLI and API into every parse), yet the caller's main is
    untouched afterwards."""
    mark = tmp_path / "imported"
    script = tmp_path / "main_script.py"
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "if __name__ != '__main__':\n"
        f"    Path({str(mark)!r}).write_text(__name__)\n"
        "from etl import sandbox\n"
        "if __name__ == '__main__':\n"
        "    main = sys.modules['__main__']\n"
        "    print(sandbox.run_limited(str.upper, 'ok', memory_mb=1024, seconds=30))\n"
        "    print(sys.modules['__main__'] is main)\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout.split() == ["OK", "True"], done.stderr[-2000:]
    assert not mark.exists(), mark.read_text()


def test_the_sandbox_environment_is_the_childrens_only() -> None:
    """Parsing children skip GDAL's VRT and network drivers; the API process keeps VRT
    (rasterio warps raster tiles at a raster's edge through it)."""
    import os

    from etl import sandbox

    child = sandbox.run_limited(_gdal_skip, memory_mb=1024, seconds=30)
    assert child is not None
    assert {"VRT", "OGR_VRT", "HTTP", "WMS"} <= set(child.split())
    assert "VRT" not in (os.environ.get("GDAL_SKIP") or "").split()
    assert os.environ["PROJ_NETWORK"] == "OFF"
