"""Coordinates on import: CRS choice, known points in every accepted system, cells, checks.

Pure and fast (no database). The truth point is in 石峰区, Zhuzhou (113.13°E, 27.87°N): it is
projected into each system with pyproj or the GCJ-02/BD-09 formulas, read back through
``resolve_crs`` + ``to_storage``, and compared in metres on the ellipsoid.
"""

from __future__ import annotations

import os
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS, Geod, Transformer
from shapely import wkt

from etl import coords
from etl.model import FileRejected
from gis_service.crs import wgs84_to_bd09, wgs84_to_gcj02

TRUTH = (113.13, 27.87)
GEOD = Geod(ellps="GRS80")

ESRI_GK_CM114 = (
    'PROJCS["CGCS2000_3_Degree_GK_CM_114E",GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",'
    'DATUM["D_China_2000",SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],'
    'UNIT["Degree",0.0174532925199433]],PROJECTION["Gauss_Kruger"],PARAMETER["False_Easting",'
    '500000.0],PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",114.0],'
    'PARAMETER["Scale_Factor",1.0],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]'
)
ESRI_GK_ZONE38 = ESRI_GK_CM114.replace("CM_114E", "Zone_38").replace("500000.0", "38500000.0")
ESRI_XIAN80_CM114 = (
    'PROJCS["Xian_1980_3_Degree_GK_CM_114E",GEOGCS["GCS_Xian_1980",DATUM["D_Xian_1980",'
    'SPHEROID["Xian_1980",6378140.0,298.257]],PRIMEM["Greenwich",0.0],'
    'UNIT["Degree",0.0174532925199433]],PROJECTION["Gauss_Kruger"],PARAMETER["False_Easting",'
    '500000.0],PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",114.0],'
    'PARAMETER["Scale_Factor",1.0],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]'
)
#: A hand-written .prj (no Esri/EPSG names) on the CGCS2000 ellipsoid, CM 111°E.
CUSTOM_GK_CM111 = (
    'PROJCS["Gauss",GEOGCS["GCS_unknown",DATUM["D_unknown",SPHEROID["CGCS2000",6378137.0,'
    '298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],'
    'PROJECTION["Transverse_Mercator"],PARAMETER["False_Easting",500000.0],'
    'PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",111.0],'
    'PARAMETER["Scale_Factor",1.0],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]'
)
#: Xi'an 80 GK with made-up (but well-formed) seven parameters, as a surveying office gives.
XIAN80_TOWGS84 = (
    'PROJCS["Xian 1980 / 3-degree Gauss-Kruger CM 114E",GEOGCS["Xian 1980",DATUM["Xian_1980",'
    'SPHEROID["IAG 1975",6378140,298.257],TOWGS84[24,-123,-94,0.02,-0.25,-0.13,1.1]],'
    'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
    'PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],'
    'PARAMETER["central_meridian",114],PARAMETER["scale_factor",1],'
    'PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1]]'
)


def project(epsg: int, lon: float = TRUTH[0], lat: float = TRUTH[1]) -> tuple[float, float]:
    x, y = Transformer.from_crs(4490, epsg, always_xy=True).transform(lon, lat)
    return float(x), float(y)


def metres_from_truth(geom: shapely.Geometry) -> float:
    return float(GEOD.inv(TRUTH[0], TRUTH[1], geom.x, geom.y)[2])


def read_point(
    x: float,
    y: float,
    *,
    declared: CRS | None = None,
    option: str | None = None,
    hint_lon: float | None = None,
) -> tuple[coords.CrsChoice, shapely.Geometry]:
    """resolve_crs + to_storage for one point, as the pipeline does."""
    choice = coords.resolve_crs(declared, option, np.array([[x, y]]), hint_lon=hint_lon)
    out = coords.to_storage(np.array([shapely.Point(x, y)], dtype=object), choice)
    return choice, out[0]


def rejected(excinfo: pytest.ExceptionInfo[FileRejected]) -> str:
    err = excinfo.value
    assert err.detail_zh
    assert err.detail
    return f"{err.code}: {err.detail}"


# ------------------------------------------------------------------------ known points
@pytest.mark.parametrize(
    ("option", "epsg", "source"),
    [
        ("EPSG:4547", 4547, "GK"),  # 3-degree, CM 114E (113.13 rounds to CM 114)
        ("epsg:4526", 4526, "GK"),  # 3-degree zone 38 with prefix (38 × 3 = 114)
        ("4497", 4497, "GK"),  # 6-degree zone 19 with prefix (CM 111)
        ("EPSG:4508", 4508, "GK"),  # 6-degree CM 111 without prefix
        ("EPSG:3857", 3857, "WGS84"),  # Web Mercator, declared explicitly
    ],
)
def test_projected_option_returns_truth_within_a_metre(option, epsg, source):
    x, y = project(epsg)
    choice, geom = read_point(x, y, option=option)
    assert (choice.kind, choice.epsg, choice.source_crs) == ("epsg", epsg, source)
    assert metres_from_truth(geom) < 1.0


def test_prefixed_easting_names_the_3_degree_zone():
    x, y = project(4526)
    assert 38_000_000 < x < 39_000_000
    choice, geom = read_point(x, y)
    assert choice.epsg == 4526
    assert choice.note is not None
    assert "zone 38" in choice.note
    assert metres_from_truth(geom) < 1.0


def test_prefixed_easting_names_the_6_degree_zone():
    x, y = project(4497)
    assert 19_000_000 < x < 20_000_000
    choice, geom = read_point(x, y)
    assert choice.epsg == 4497
    assert metres_from_truth(geom) < 1.0


def test_plain_easting_without_hint_lists_candidates():
    x, y = project(4547)
    with pytest.raises(FileRejected) as excinfo:
        coords.resolve_crs(None, None, np.array([[x, y]]))
    message = rejected(excinfo)
    assert message.startswith("crs_required")
    assert "EPSG:4547 (CM 114E)" in message
    assert "EPSG:4534" in message


def test_plain_easting_with_hint_assumes_the_nearest_3_degree_zone():
    x, y = project(4547)
    choice, geom = read_point(x, y, hint_lon=113.1)
    assert choice.epsg == 4547
    assert choice.note is not None
    assert "assumed zone CM 114E (EPSG:4547) from the area's longitude" in choice.note
    assert metres_from_truth(geom) < 1.0


def test_plain_6_degree_easting_with_hint_is_refused_as_far_from_the_area():
    x, y = project(4508)  # read as CM 114 it lands ~3° east of the area
    with pytest.raises(FileRejected) as excinfo:
        coords.resolve_crs(None, None, np.array([[x, y]]), hint_lon=113.1)
    assert rejected(excinfo).startswith("crs_conflict")


@pytest.mark.parametrize(
    ("option", "forward"),
    [("gcj02", wgs84_to_gcj02), ("GCJ-02", wgs84_to_gcj02), ("BD-09", wgs84_to_bd09)],
)
def test_gcj02_and_bd09_options_return_truth_within_a_metre(option, forward):
    x, y = forward(*TRUTH)
    assert metres_from_truth(shapely.Point(x, y)) > 100.0  # the obfuscation is real
    choice, geom = read_point(x, y, option=option)
    assert choice.kind in ("gcj02", "bd09")
    assert choice.source_crs in ("GCJ02", "BD09")
    assert metres_from_truth(geom) < 1.0


# ---------------------------------------------------------------------- swapped/conflict
def test_swapped_gauss_kruger_axes_are_refused():
    x, y = project(4547)
    with pytest.raises(FileRejected) as excinfo:
        coords.resolve_crs(None, None, np.array([[y, x]]), hint_lon=113.1)
    assert "axis order swapped" in rejected(excinfo)


def test_swapped_prefixed_gauss_kruger_axes_are_refused():
    x, y = project(4526)
    with pytest.raises(FileRejected) as excinfo:
        coords.resolve_crs(None, None, np.array([[y, x]]))
    assert rejected(excinfo).startswith("axis_swapped")


def test_swapped_lonlat_without_crs_is_refused():
    with pytest.raises(FileRejected) as excinfo:
        coords.resolve_crs(None, None, np.array([[27.87, 113.13], [27.9, 113.2]]))
    assert "axis order swapped" in rejected(excinfo)


def test_option_contradicting_the_coordinates_is_refused():
    x, y = project(4547)
    with pytest.raises(FileRejected) as excinfo:
        coords.resolve_crs(None, "wgs84", np.array([[x, y]]))
    message = rejected(excinfo)
    assert message.startswith("crs_conflict")
    assert "Gauss-Kruger metres without a zone prefix" in message


def test_declared_lonlat_holding_web_mercator_is_refused():
    x, y = project(3857)
    with pytest.raises(FileRejected) as excinfo:
        coords.resolve_crs(CRS.from_epsg(4490), None, np.array([[x, y]]))
    assert rejected(excinfo).startswith("crs_conflict")


def test_mixed_zone_prefixes_are_refused():
    a = project(4526)
    b = project(4527, 116.9, 28.1)  # zone 39
    with pytest.raises(FileRejected) as excinfo:
        coords.resolve_crs(None, None, np.array([a, a, b]))
    assert "38, 39" in rejected(excinfo)


def test_web_mercator_looking_like_zone_13_is_refused_as_ambiguous():
    x, y = project(3857, 122.0, 37.0)  # x ≈ 13.58e6 reads as 6-degree zone 13
    with pytest.raises(FileRejected) as excinfo:
        coords.resolve_crs(None, None, np.array([[x, y]]))
    assert rejected(excinfo).startswith("crs_ambiguous")


def test_option_wins_over_declared_crs_with_a_note():
    choice = coords.resolve_crs(CRS.from_epsg(4326), "gcj02", np.array([TRUTH]))
    assert choice.kind == "gcj02"
    assert choice.note is not None
    assert "overrides" in choice.note


# ---------------------------------------------------------------------- undeclared lon/lat
def test_undeclared_lonlat_requires_crs():
    with pytest.raises(FileRejected) as excinfo:
        coords.resolve_crs(None, None, np.array([TRUTH]))
    message = rejected(excinfo)
    assert message.startswith("crs_required")
    assert "gcj02" in message


def test_undeclared_lonlat_assumed_geographic_only_on_request():
    choice = coords.resolve_crs(None, None, np.array([TRUTH]), assume_geographic=True)
    assert (choice.epsg, choice.source_crs) == (4490, "CGCS2000")
    assert choice.note is not None
    assert "assumed" in choice.note


def test_no_coordinates_at_all_is_not_an_error():
    choice = coords.resolve_crs(None, None, np.full((3, 2), np.nan))
    assert choice.epsg == 4490
    assert choice.note is not None


# --------------------------------------------------------------------------- declared CRS
@pytest.mark.parametrize(
    ("prj", "epsg", "epsg_of_truth"),
    [(ESRI_GK_CM114, 4547, 4547), (ESRI_GK_ZONE38, 4526, 4526), (CUSTOM_GK_CM111, 4546, 4546)],
)
def test_declared_cgcs2000_gauss_kruger_prj_is_recognised(prj, epsg, epsg_of_truth):
    x, y = project(epsg_of_truth)
    choice, geom = read_point(x, y, declared=CRS.from_wkt(prj))
    assert (choice.kind, choice.epsg, choice.source_crs) == ("epsg", epsg, "GK")
    assert metres_from_truth(geom) < 1.0


def test_declared_xian80_without_parameters_is_refused():
    x, y = project(4547)
    with pytest.raises(FileRejected) as excinfo:
        coords.resolve_crs(CRS.from_wkt(ESRI_XIAN80_CM114), None, np.array([[x, y]]))
    message = rejected(excinfo)
    assert message.startswith("crs_no_parameters")
    assert "Xi'an 80 without transformation parameters" in message


def test_declared_xian80_with_towgs84_is_converted_with_them():
    x, y = project(4547)
    choice, geom = read_point(x, y, declared=CRS.from_wkt(XIAN80_TOWGS84))
    assert (choice.kind, choice.source_crs) == ("wkt", "XIAN80")
    assert choice.wkt is not None
    assert "TOWGS84" in choice.label.upper()
    # The seven parameters move the point by metres to tens of metres, not kilometres.
    assert 1.0 < metres_from_truth(geom) < 200.0


@pytest.mark.parametrize(
    ("declared", "epsg"), [("OGC:CRS84", 4326), ("EPSG:4490", 4490), ("EPSG:4326", 4326)]
)
def test_declared_geographic_crs(declared, epsg):
    choice, geom = read_point(*TRUTH, declared=CRS.from_user_input(declared))
    assert choice.epsg == epsg
    assert not choice.is_projected
    assert metres_from_truth(geom) == 0.0


# ------------------------------------------------------------------------------ options
@pytest.mark.parametrize(
    ("value", "kind", "epsg", "source"),
    [
        ("EPSG:4547", "epsg", 4547, "GK"),
        ("4547", "epsg", 4547, "GK"),
        (" CGCS2000 ", "epsg", 4490, "CGCS2000"),
        ("WGS84", "epsg", 4326, "WGS84"),
        ("wgs 84", "epsg", 4326, "WGS84"),
        ("gcj-02", "gcj02", None, "GCJ02"),
        ("GCJ02", "gcj02", None, "GCJ02"),
        ("bd-09", "bd09", None, "BD09"),
        ("BD09", "bd09", None, "BD09"),
    ],
)
def test_accepted_options(value, kind, epsg, source):
    choice = coords.parse_crs_option(value)
    assert (choice.kind, choice.epsg, choice.source_crs) == (kind, epsg, source)
    assert choice.label


def test_option_label_names_the_zone():
    assert coords.parse_crs_option("EPSG:4547").label == (
        "CGCS2000 / 3-degree Gauss-Kruger CM 114E (EPSG:4547)"
    )


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("https://epsg.io/4547.wkt", "URLs are not accepted"),
        ("file:///etc/passwd", "URLs are not accepted"),
        ("+proj=longlat +datum=WGS84", "PROJ strings"),
        ('GEOGCS["WGS 84",DATUM["WGS_1984"]]', "WKT"),
        ("EPSG:999999", "not a known CRS"),
        ("EPSG:32633", "not for China"),  # UTM zone 33N: Europe/Africa
        ("EPSG:5773", "not a horizontal"),  # a vertical CRS
        ("EPSG:2326", "datum"),  # Hong Kong 1980 Grid
        ("xian80", "Xi'an 80 without transformation parameters"),
        ("bd09mc", "Baidu Mercator"),
        ("mars", "unknown --crs"),
        ("", "empty"),
    ],
)
def test_refused_options(value, words):
    with pytest.raises(FileRejected) as excinfo:
        coords.parse_crs_option(value)
    assert words in rejected(excinfo)


def test_proj_network_is_off():
    import pyproj.network

    if os.environ.get("PROJ_NETWORK", "OFF").upper() == "OFF":
        assert pyproj.network.is_network_enabled() is False


# ------------------------------------------------------------------------ from_storage
@pytest.mark.parametrize(
    ("target", "label_part"),
    [
        ("gcj02", "GCJ-02 (Amap/Tencent display coordinates, not a survey CRS)"),
        ("bd09", "BD-09 (Baidu"),
        ("EPSG:4547", "EPSG:4547"),
        ("wgs84", "WGS 84"),
    ],
)
def test_export_and_back_within_half_a_metre(target, label_part):
    rng = np.random.default_rng(7)
    pts = shapely.points(rng.uniform(108.8, 114.3, 500), rng.uniform(24.6, 30.1, 500))
    out, choice = coords.from_storage(pts, target)
    assert label_part in choice.label
    back = coords.to_storage(out, choice)
    dist = GEOD.inv(
        shapely.get_x(pts), shapely.get_y(pts), shapely.get_x(back), shapely.get_y(back)
    )[2]
    assert float(np.max(dist)) < 0.5


def test_transforms_keep_none_polygons_and_z():
    geoms = np.array(
        [None, wkt.loads("POLYGON Z ((113 27 5, 113.1 27 5, 113.1 27.1 5, 113 27 5))")],
        dtype=object,
    )
    out, _ = coords.from_storage(geoms, "gcj02")
    assert out[0] is None
    assert shapely.has_z(out[1])
    assert shapely.get_type_id(out[1]) == 3


# ----------------------------------------------------------------- points_from_columns
@pytest.mark.parametrize(
    ("lon", "lat"),
    [
        ("113.13", "27.87"),
        (" 113.13 ", "27.87\u3000"),
        ("１１３．１３", "２７．８７"),  # full-width digits and point
        ("113°07′48″E", "27°52′12″N"),
        ("113°07'48\"", "N27°52'12\""),
        ("113度7分48秒", "27度52分12秒"),
        ("东经113度7分48秒", "北纬27°52.2′"),
        ("E113°7.8'", "27°52.2'N"),
        ("113 07 48", "27:52:12"),
        ("113,13", "27,87"),  # decimal commas
        ("113.13E", "+27.87"),
        (113.13, 27.87),  # numeric Excel cells
        (Decimal("113.13"), np.float64(27.87)),
    ],
)
def test_cell_forms(lon, lat):
    pts, problems = coords.points_from_columns([lon], [lat], np.array([5]))
    assert problems == []
    assert pts[0].x == pytest.approx(113.13, abs=1e-9)
    assert pts[0].y == pytest.approx(27.87, abs=1e-9)


def test_pandas_missing_markers_are_missing():
    _, problems = coords.points_from_columns([pd.NA, "113"], [27.8, None], np.array([3, 4]))
    assert [(p.row, p.reason) for p in problems] == [
        (3, "missing coordinate in column 'lon'"),
        (4, "missing coordinate in column 'lat'"),
    ]


def test_southern_and_western_hemispheres_are_negative():
    pts, _ = coords.points_from_columns(["W70°30'"], ["33.5S"], np.array([1]))
    assert (pts[0].x, pts[0].y) == (-70.5, -33.5)


def test_thousands_separators_in_metres():
    pts, problems = coords.points_from_columns(["414,320.83"], ["3,084,339.45"], np.array([1]))
    assert problems == []
    assert (pts[0].x, pts[0].y) == (414320.83, 3084339.45)


def test_comma_with_three_decimals_is_decided_per_column():
    rows = np.array([1, 2])
    pts, _ = coords.points_from_columns(["113,123", "113,5"], ["27.8", "27.9"], rows)
    assert pts[0].x == pytest.approx(113.123)  # the column uses decimal commas
    pts, problems = coords.points_from_columns(["113,123", "114,222"], ["27.8", "27.9"], rows)
    assert list(pts) == [None, None]
    assert [p.row for p in problems] == [1, 2]
    assert "decimal or a thousands separator" in problems[0].reason


def test_bad_cells_report_row_column_and_value():
    lon = ["113.13", None, "", "abc", "N27°52'", "113°70'", "x" * 60, "113.2", "nan"]
    lat = ["27.87", "27.8", "27.8", "27.8", "27.8", "27.8", "27.8", "E113", "27.8"]
    rows = np.arange(10, 10 + len(lon))
    pts, problems = coords.points_from_columns(lon, lat, rows, lon_column="经度", lat_column="纬度")
    assert [p is not None for p in pts] == [True] + [False] * 8
    by_row = {(p.row, p.column): p for p in problems}
    assert set(by_row) == {
        (11, "经度"),
        (12, "经度"),
        (13, "经度"),
        (14, "经度"),
        (15, "经度"),
        (16, "经度"),
        (17, "纬度"),
        (18, "经度"),
    }
    assert by_row[11, "经度"].reason.startswith("missing coordinate")
    assert by_row[11, "经度"].reason_zh == "列“经度”缺少坐标"
    assert "'abc'" in by_row[13, "经度"].reason
    assert "经度" in by_row[13, "经度"].reason
    assert "columns swapped" in by_row[14, "经度"].reason
    assert "below 60" in by_row[15, "经度"].reason
    assert "x" * 40 + "…" in by_row[16, "经度"].reason
    assert "x" * 41 not in by_row[16, "经度"].reason
    assert "hemisphere E in a latitude column" in by_row[17, "纬度"].reason


def test_parse_coordinate_reports_both_languages():
    assert coords.parse_coordinate("27°30′S", "lat") == -27.5
    with pytest.raises(ValueError, match=r"not a number.*\|"):
        coords.parse_coordinate("hello", "lon")


# ------------------------------------------------------------------------------ validate
def _validate(texts, expect, **kwargs):
    geoms = np.array([None if t is None else wkt.loads(t) for t in texts], dtype=object)
    rows = np.arange(2, 2 + len(texts))
    out, ok, problems, notes = coords.validate(geoms, rows, expect=expect, **kwargs)
    return out, ok, {p.row: p for p in problems}, notes


def test_validate_rejects_bad_points_with_reasons():
    texts = [
        "POINT (113.13 27.87)",
        "POINT (113.13 27.87)",  # replaced by NaN below
        "POINT (113.13 27.87)",  # replaced by Inf below
        "POINT (181 27)",
        "POINT (113 -91)",
        "POINT (0 0)",
        "POINT (27.87 113.13)",
        "POINT EMPTY",
        None,
        "POINT (-74 40.7)",
    ]
    geoms = np.array([None if t is None else wkt.loads(t) for t in texts], dtype=object)
    geoms[1] = shapely.points(np.nan, 27.0)
    geoms[2] = shapely.points(113.0, np.inf)
    _out, ok, problems, _ = coords.validate(geoms, np.arange(2, 12), expect="point")
    assert ok.tolist() == [True] + [False] * 9
    reasons = {p.row: p.reason for p in problems}
    assert "NaN or Inf" in reasons[3]
    assert "NaN or Inf" in reasons[4]
    assert "out of range" in reasons[5]
    assert "out of range" in reasons[6]
    assert "Null Island" in reasons[7]
    assert "latitude/longitude swapped?" in reasons[8]
    assert reasons[9] == "empty geometry"
    assert reasons[10] == "missing geometry"
    assert "outside China" in reasons[11]
    assert all(p.reason_zh and not p.repaired for p in problems)


def test_validate_repairs_a_bowtie_and_keeps_a_polygon():
    bowtie = "POLYGON ((113 27, 113.1 27.1, 113.1 27, 113 27.1, 113 27))"
    out, ok, problems, _ = _validate([bowtie], "polygon")
    assert ok.tolist() == [True]
    assert problems[2].repaired
    assert "Self-intersection" in problems[2].reason
    assert shapely.is_valid(out[0])
    assert shapely.get_dimensions(out[0]) == 2
    assert out[0].area == pytest.approx(0.005, rel=1e-6)


def test_validate_drops_z_with_one_note():
    texts = ["POINT Z (113.13 27.87 50)", "POINT Z (113.2 27.9 60)", "POINT (113 27)"]
    out, ok, problems, notes = _validate(texts, "point")
    assert ok.all()
    assert problems == {}
    assert notes == ["dropped Z/M values from 2 geometries (stored in 2D)"]
    assert not shapely.has_z(out).any()


def test_validate_rejects_the_wrong_dimension():
    texts = [
        "POINT (113.13 27.87)",
        "LINESTRING (113 27, 113.1 27.1)",
        "POLYGON ((113 27, 113.1 27, 113.1 27.1, 113 27))",
    ]
    _, ok, problems, _ = _validate(texts, "polygon")
    assert ok.tolist() == [False, False, True]
    assert problems[2].reason == "a point in a polygon layer"
    assert problems[3].reason == "a line in a polygon layer"


def test_validate_geometry_collections():
    texts = [
        "GEOMETRYCOLLECTION (POINT (113 27), POINT (113.1 27.1))",
        "GEOMETRYCOLLECTION (POINT (113 27), LINESTRING (113 27, 113.2 27.2))",
        "GEOMETRYCOLLECTION (POLYGON ((113 27, 113.1 27, 113.1 27.1, 113 27)))",
    ]
    out, ok, problems, _ = _validate(texts, "point")
    assert ok.tolist() == [True, False, False]
    assert out[0].geom_type == "MultiPoint"
    assert problems[2].repaired
    assert "split it" in problems[3].reason
    out, ok, _, _ = _validate(texts, "polygon")
    assert ok.tolist() == [False, False, True]
    assert out[2].geom_type == "Polygon"
    _, ok, _, _ = _validate(texts, None)
    assert ok.tolist() == [True, False, True]


def test_validate_keeps_multi_parts_and_rounds_to_1e7():
    texts = ["MULTIPOINT ((113.123456789 27.87), (113.2 27.9))"]
    out, ok, _, _ = _validate(texts, "point")
    assert ok.all()
    assert out[0].geom_type == "MultiPoint"
    assert shapely.get_coordinates(out[0])[0, 0] == pytest.approx(113.1234568, abs=1e-12)


def test_validate_vertex_cap():
    n = coords.MAX_VERTICES + 1
    line = shapely.linestrings(np.linspace(113.0, 113.5, n), np.full(n, 27.5))
    _, ok, problems, _ = coords.validate(
        np.array([line], dtype=object), np.array([7]), expect="line"
    )
    assert ok.tolist() == [False]
    assert "too many vertices" in problems[0].reason


def test_validate_missing_allowed_and_known_bad():
    texts = [None, "POINT (113.13 27.87)", None]
    _, ok, problems, _ = _validate(texts, "point", allow_missing=True)
    assert ok.tolist() == [True, True, True]
    assert problems == {}
    _, ok, problems, _ = _validate(texts, "point", known_bad=np.array([True, False, False]))
    assert ok.tolist() == [False, True, False]
    assert set(problems) == {4}


def test_validate_rejects_unknown_expect():
    with pytest.raises(ValueError, match="expect"):
        coords.validate(np.array([], dtype=object), np.array([]), expect="area")
