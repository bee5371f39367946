"""Column matching and cell conversion of imports (pure: DataFrames built here, no database).

The fixtures are named after what ledgers really look like: Chinese templates with ``*``
markers and units in brackets, full-width headers typed in WPS, English GIS exports,
hostile header names, Excel serial dates.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import CheckConstraint

from etl.mapping import (
    CHINA_TZ,
    LAT_ALIASES,
    LON_ALIASES,
    TARGETS,
    ColumnMatch,
    TargetSpec,
    convert,
    describe,
    match_columns,
    normalize_header,
    parse_cell,
)
from etl.model import FileRejected, SourceTable
from gis_service.db.models import Base

ENTERPRISE = TARGETS["enterprise"]


def table(columns: dict[str, list[object]], first_row: int = 2) -> SourceTable:
    """A SourceTable as a CSV reader would make it (row 1 is the header line)."""
    frame = pd.DataFrame(columns)
    rows = np.arange(first_row, first_row + len(frame), dtype=np.int64)
    return SourceTable(
        frame=frame,
        geometry=None,
        crs=None,
        encoding="utf-8",
        layer=None,
        source_rows=rows,
        fmt="csv",
    )


def run(target: str, columns: dict[str, list[object]], **options):
    """Match and convert in one go, as the importer does."""
    source = table(columns, first_row=options.pop("first_row", 2))
    spec = TARGETS[target]
    match = match_columns(list(source.frame.columns), spec, options.pop("overrides", {}), **options)
    return match, convert(source, match, spec)


def one(target: str, field: str, cell: object):
    """Parse one cell for one field: (value, issue)."""
    return parse_cell(TARGETS[target].field_spec(field), cell)


def enterprise_columns(n: int = 1, **extra: list[object]) -> dict[str, list[object]]:
    """The three required enterprise columns plus the USCC, ``n`` rows."""
    return {
        "统一社会信用代码": [f"91430200MA4L{i:06d}" for i in range(n)],
        "企业名称": [f"企业{i}" for i in range(n)],
        "行业类别": ["危化品"] * n,
        "风险等级": ["红"] * n,
        **extra,
    }


# ---------------------------------------------------------------------------
# Header matching
# ---------------------------------------------------------------------------
def test_chinese_template_headers_with_markers_and_units():
    headers = [
        "*统一编号",
        "*隐患点名称",
        "灾害类型",
        "威胁户数(户)",
        "受威胁人数（人）",
        "威胁财产（万元）",
        "经度",
        "纬度",
    ]
    match = match_columns(headers, TARGETS["geohazard_point"], {})
    assert match.fields == {
        "code": "*统一编号",
        "name": "*隐患点名称",
        "kind": "灾害类型",
        "threatened_households": "威胁户数(户)",
        "threatened_people": "受威胁人数（人）",
        "threatened_property": "威胁财产（万元）",
    }
    assert (match.lon, match.lat) == ("经度", "纬度")
    assert match.extra == []


def test_english_gis_export_headers():
    headers = ["USCC", "company", "sector", "risk", "employees", "lng", "latitude", "OBJECTID"]
    match = match_columns(headers, ENTERPRISE, {})
    assert match.fields == {
        "uscc": "USCC",
        "name": "company",
        "sector": "sector",
        "risk_level": "risk",
        "employees": "employees",
    }
    assert (match.lon, match.lat) == ("lng", "latitude")
    assert match.extra == ["OBJECTID"]


def test_full_width_and_padded_headers_typed_in_wps():
    headers = ["＊企业名称", "ＵＳＣＣ", "行业　类别", " 风险等级（四色） ", "经度(°)", "Ｙ坐标"]
    match = match_columns(headers, ENTERPRISE, {})
    assert match.fields["name"] == "＊企业名称"
    assert match.fields["uscc"] == "ＵＳＣＣ"
    assert match.fields["sector"] == "行业　类别"
    assert match.fields["risk_level"] == " 风险等级（四色） "
    assert (match.lon, match.lat) == ("经度(°)", "Ｙ坐标")


def test_normalize_header_folds_width_case_markers_and_units():
    assert normalize_header("＊受威胁人数 (人)") == "受威胁人数"
    assert normalize_header("ＵＳＣＣ") == "uscc"
    assert normalize_header("企业(单位)名称") == "企业(单位)名称"
    assert normalize_header("(户)") == "(户)"


def test_specific_name_beats_generic_name():
    match = match_columns([*enterprise_columns(), "名称"], ENTERPRISE, {})
    assert match.fields["name"] == "企业名称"
    assert "名称" in match.extra
    assert any("'企业名称' is preferred" in note for note in match.notes)


def test_two_headers_tied_for_one_field_are_refused():
    headers = ["统一社会信用代码", "名称", "名 称", "行业", "风险等级"]
    with pytest.raises(FileRejected) as caught:
        match_columns(headers, ENTERPRISE, {})
    error = caught.value
    assert error.code == "ambiguous_columns"
    assert "'名称'" in error.detail
    assert "'名 称'" in error.detail
    assert "--map" in error.detail
    assert "--map" in error.detail_zh


def test_override_resolves_a_tie():
    headers = ["统一社会信用代码", "名称", "名 称", "行业", "风险等级"]
    match = match_columns(headers, ENTERPRISE, {"名 称": "ignore"})
    assert match.fields["name"] == "名称"
    assert match.ignored == ["名 称"]
    assert "名 称" not in match.extra


def test_override_to_a_field_to_coordinates_and_to_ignore():
    headers = [*enterprise_columns(), "公司简称", "东经度数", "北纬度数", "备注", "内部编号"]
    overrides = {
        "公司简称": "name",
        "东经度数": "lon",
        "北纬度数": "lat",
        "备注": "-",
        "内部编号": "ignore",
    }
    match = match_columns(headers, ENTERPRISE, overrides)
    assert match.fields["name"] == "公司简称"
    assert (match.lon, match.lat) == ("东经度数", "北纬度数")
    assert match.ignored == ["备注", "内部编号"]
    # 企业名称 matched name automatically, but the override took the field.
    assert match.extra == ["企业名称"]


def test_override_header_may_be_written_loosely():
    match = match_columns([*enterprise_columns(), "公司 简称"], ENTERPRISE, {"公司简称": "-"})
    assert match.ignored == ["公司 简称"]


def test_override_naming_an_unknown_field_lists_the_valid_ones():
    with pytest.raises(FileRejected) as caught:
        match_columns([*enterprise_columns(), "公司"], ENTERPRISE, {"公司": "company_title"})
    assert caught.value.code == "unknown_override"
    for name in ("uscc", "name", "risk_level", "lon", "lat", "ignore"):
        assert name in caught.value.detail


def test_override_naming_an_unknown_header_lists_the_columns():
    with pytest.raises(FileRejected) as caught:
        match_columns(list(enterprise_columns()), ENTERPRISE, {"不存在的列": "name"})
    assert caught.value.code == "unknown_override"
    assert "企业名称" in caught.value.detail


def test_two_overrides_to_one_field_are_refused():
    with pytest.raises(FileRejected, match="both"):
        match_columns(["甲", "乙", *enterprise_columns()], ENTERPRISE, {"甲": "name", "乙": "name"})


def test_missing_required_field_names_it_and_its_headers():
    with pytest.raises(FileRejected) as caught:
        match_columns(["统一社会信用代码", "企业名称", "行业类别"], ENTERPRISE, {})
    error = caught.value
    assert error.code == "missing_required"
    assert "risk_level" in error.detail
    assert "风险等级" in error.detail
    assert "四色等级" in error.detail
    assert "风险等级" in error.detail_zh


def test_duplicate_and_nul_headers_are_refused():
    with pytest.raises(FileRejected, match="twice"):
        match_columns(["企业名称", "企业名称"], ENTERPRISE, {})
    with pytest.raises(FileRejected, match="NUL"):
        match_columns(["企业\x00名称"], ENTERPRISE, {})


def test_header_in_a_different_unit_is_not_matched():
    headers = ["林班号", "林班名称", "面积(亩)"]
    match = match_columns(headers, TARGETS["forest_patch"], {})
    assert "area_ha" not in match.fields
    assert match.extra == ["面积(亩)"]
    assert any("亩" in note for note in match.notes)
    assert (
        match_columns(["林班号", "林班名称", "面积(公顷)"], TARGETS["forest_patch"], {}).fields[
            "area_ha"
        ]
        == "面积(公顷)"
    )


def test_constant_fills_a_column_the_file_does_not_have():
    match, converted = run(
        "facility",
        {"学校名称": ["一中", "二小"], "在校生数": [1200, 300]},
        constants={"kind": "学校"},
    )
    assert match.constants == {"kind": "school"}
    assert converted.records["kind"] == ["school", "school"]
    assert converted.records["people"] == [1200, 300]


def test_bad_constant_rejects_the_file():
    with pytest.raises(FileRejected, match="not a facility kind"):
        match_columns(["学校名称"], TARGETS["facility"], {}, constants={"kind": "火星基地"})
    with pytest.raises(FileRejected, match="not a field"):
        match_columns(["学校名称"], TARGETS["facility"], {}, constants={"colour": "red"})


def test_only_one_coordinate_column_is_noted():
    match = match_columns([*enterprise_columns(), "经度"], ENTERPRISE, {})
    assert match.lon == "经度"
    assert match.lat is None
    assert any("both" in note for note in match.notes)


# ---------------------------------------------------------------------------
# Enumerations: every declared spelling, and hand-picked rows per target
# ---------------------------------------------------------------------------
ENUM_FIELDS = [
    (target.table, spec.name)
    for target in TARGETS.values()
    for spec in target.fields
    if spec.kind in ("enum", "enum_list")
]


@pytest.mark.parametrize(("target", "field"), ENUM_FIELDS)
def test_every_declared_spelling_maps_to_its_key(target, field):
    spec = TARGETS[target].field_spec(field)
    spellings = [*spec.values, *spec.choices]
    expected = [*spec.values.values(), *spec.choices]
    for cell, key in zip(spellings, expected, strict=True):
        value, issue = parse_cell(spec, cell)
        assert issue is None, (cell, issue)
        assert value == ([key] if spec.kind == "enum_list" else key), cell


EXAMPLES = [
    ("enterprise", "risk_level", "红色", "red"),
    ("enterprise", "risk_level", "较大风险", "orange"),
    ("enterprise", "risk_level", "三级", "yellow"),
    ("enterprise", "risk_level", "ＢＬＵＥ", "blue"),
    ("enterprise", "risk_level", "R", "red"),
    ("enterprise", "risk_level", "红色（重大风险）", "red"),
    ("enterprise", "sector", "危险化学品", "hazchem"),
    ("enterprise", "sector", "烟花爆竹", "fireworks"),
    ("enterprise", "sector", "非煤矿山", "non_coal_mine"),
    ("enterprise", "sector", "煤矿", "coal_mine"),
    ("enterprise", "sector", "冶金", "industry_trade"),
    ("enterprise", "sector", "其他", "other"),
    (
        "enterprise",
        "special_flags",
        "粉尘涉爆、有限空间，液氨制冷",
        ["dust_explosion", "confined_space", "ammonia_refrigeration"],
    ),
    ("building", "structure", "砖混", "masonry"),
    ("building", "structure", "框架", "reinforced_concrete"),
    ("building", "structure", "钢结构", "steel"),
    ("building", "structure", "木结构", "wood"),
    ("building", "use", "住宅", "residential"),
    ("building", "year_band", 1995, "1990s"),
    ("building", "year_band", "1975年", "pre1980"),
    ("building", "year_band", "80年代", "1980s"),
    ("building", "urban_rural", "农村", "rural"),
    ("facility", "kind", "卫生院", "hospital"),
    ("facility", "kind", "敬老院", "welfare_home"),
    ("facility", "kind", "czt_xx", "school"),
    ("geohazard_point", "kind", "滑坡", "landslide"),
    ("geohazard_point", "kind", "危岩", "collapse"),
    ("geohazard_point", "kind", "泥石流", "debris_flow"),
    ("geohazard_point", "kind", "岩溶塌陷", "ground_collapse"),
    ("geohazard_point", "kind", "地裂缝", "ground_fissure"),
    ("geohazard_point", "kind", "地面沉降", "subsidence"),
    ("geohazard_point", "danger_grade", "特大型", "I"),
    ("geohazard_point", "danger_grade", "Ⅱ", "II"),
    ("geohazard_point", "danger_grade", "III", "III"),
    ("geohazard_point", "danger_grade", 4.0, "IV"),
    ("geohazard_point", "scale", "特大型", "giant"),
    ("geohazard_point", "stability", "欠稳定", "unstable"),
    ("geohazard_zone", "risk_level", "极高风险区", "very_high"),
    ("geohazard_zone", "risk_level", "中", "medium"),
    ("shelter", "grade", "乡镇（街道）级", "township"),
    ("shelter", "space_type", "室外", "outdoor"),
    ("shelter", "duration_class", "紧急避难场所", "emergency"),
    ("shelter", "hazard_types", "地震、洪涝；台风 地震", ["earthquake", "flood", "typhoon"]),
    ("shelter", "hazard_types", ["地震", "疫情"], ["earthquake", "public_health"]),
    ("shelter", "status", "已开放", "open"),
    ("safety_hazard", "level", "重大事故隐患", "major"),
    ("safety_hazard", "level", "一般", "general"),
    ("safety_hazard", "category", "现场类", "site"),
    ("safety_hazard", "found_via", "网格员巡查", "grid_patrol"),
    ("safety_hazard", "status", "已整改", "closed"),
    ("safety_hazard", "status", "已销号", "closed"),
    ("safety_hazard", "status", "整改中", "rectifying"),
    ("safety_hazard", "status", "未整改", "found"),
    ("safety_hazard", "status", "待整改", "assigned"),
    ("fire_point", "source_kind", "卫星", "satellite"),
    ("fire_point", "source_kind", "VIIRS", "satellite"),
    ("fire_point", "verification_status", "待核查", "pending"),
    ("fire_point", "verdict", "秸秆焚烧", "agri_burning"),
    ("barrier_line", "kind", "国道", "road_major"),
    ("barrier_line", "kind", "河流", "river"),
    ("grid", "kind", "专属网格", "dedicated"),
]


@pytest.mark.parametrize(("target", "field", "cell", "expected"), EXAMPLES)
def test_enum_examples(target, field, cell, expected):
    value, issue = one(target, field, cell)
    assert issue is None
    assert value == expected


def test_every_target_has_an_example_row():
    tables_with_enums = {t for t, _ in ENUM_FIELDS}
    assert tables_with_enums <= {t for t, *_ in EXAMPLES}


def test_unknown_enum_value_is_a_problem_naming_what_is_accepted():
    value, issue = one("enterprise", "risk_level", "紫色")
    assert value is None
    assert issue.blocking
    assert issue.reason == "value '紫色' is not a risk level (accepted: 红/橙/黄/蓝 …)"
    assert "红/橙/黄/蓝" in issue.reason_zh


def test_undeclared_spelling_falls_back_only_where_declared():
    value, issue = one("building", "structure", "土木")
    assert value == "other"
    assert not issue.blocking
    assert "其他" in issue.reason_zh
    value, issue = one("geohazard_point", "kind", "不稳定斜坡")
    assert value is None
    assert issue.blocking


def test_enum_list_refuses_unknown_items_and_blank_is_empty():
    value, issue = one("shelter", "hazard_types", "地震、陨石")
    assert value is None
    assert "陨石" in issue.reason
    assert one("shelter", "hazard_types", None) == ([], None)


# ---------------------------------------------------------------------------
# Numbers, dates, booleans, text
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("１２", 12),
        ("1,200", 1200),
        ("１，２００", 1200),
        ("12户", 12),
        (" 35 户 ", 35),
        (12.0, 12),
        (np.int64(7), 7),
        ("+7", 7),
        ("12.0", 12),
    ],
)
def test_counts_accept_what_people_type(cell, expected):
    assert one("geohazard_point", "threatened_households", cell) == (expected, None)


@pytest.mark.parametrize(
    ("cell", "fragment"),
    [
        ("12.5", "not a whole number"),
        ("-3", "below the minimum 0"),
        ("1.2万", "magnitude"),
        ("1,2", "not a number"),
        ("=1+2", "not a number"),
        ("约12", "not a number"),
        ("12人", "unit '人'"),
        (True, "not a number"),
        ("3000000000", "above the maximum"),
    ],
)
def test_counts_refuse_what_cannot_be_read(cell, fragment):
    value, issue = one("geohazard_point", "threatened_households", cell)
    assert value is None
    assert fragment in issue.reason


def test_float_with_its_declared_unit_and_magnitude_in_the_unit():
    assert one("geohazard_point", "threatened_property", "1.5万元") == (1.5, None)
    assert one("shelter", "effective_area", "1200㎡") == (1200.0, None)
    assert one("shelter", "effective_area", "1,200.5 m²") == (1200.5, None)
    value, issue = one("shelter", "effective_area", "3亩")
    assert value is None
    assert "亩" in issue.reason


@pytest.mark.parametrize(
    "cell",
    [
        "2024-03-05",
        "2024/3/5",
        "2024.03.05",
        "2024年3月5日",
        "２０２４年３月５日",
        "20240305",
        20240305,
        45356,
        "45356",
        pd.Timestamp("2024-03-05"),
        dt.date(2024, 3, 5),
        "2024-03-05 00:00:00",
    ],
)
def test_dates_in_every_ledger_spelling(cell):
    assert one("enterprise", "assessed_at", cell) == (dt.date(2024, 3, 5), None)


@pytest.mark.parametrize(
    ("cell", "fragment"),
    [
        ("2024/2/30", "not a calendar date"),
        ("3/5/2024", "not a date"),
        ("2024年3月", "not a date"),
        (12, "not a date"),
        ("1850-01-01", "year outside"),
        ("下周", "not a date"),
    ],
)
def test_bad_dates_are_problems(cell, fragment):
    value, issue = one("enterprise", "assessed_at", cell)
    assert value is None
    assert fragment in issue.reason


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2024-03-05 14:30", dt.datetime(2024, 3, 5, 14, 30, tzinfo=CHINA_TZ)),
        ("2024/3/5 14:30:15", dt.datetime(2024, 3, 5, 14, 30, 15, tzinfo=CHINA_TZ)),
        ("2024年3月5日 14时30分", dt.datetime(2024, 3, 5, 14, 30, tzinfo=CHINA_TZ)),
        ("2024-03-05T06:30:00Z", dt.datetime(2024, 3, 5, 6, 30, tzinfo=dt.UTC)),
        ("2024-03-05", dt.datetime(2024, 3, 5, tzinfo=CHINA_TZ)),
        (45356.5, dt.datetime(2024, 3, 5, 12, 0, tzinfo=CHINA_TZ)),
        (pd.Timestamp("2024-03-05 14:30"), dt.datetime(2024, 3, 5, 14, 30, tzinfo=CHINA_TZ)),
    ],
)
def test_datetimes_are_aware_and_default_to_china_time(cell, expected):
    value, issue = one("fire_point", "detected_at", cell)
    assert issue is None
    assert value == expected
    assert value.tzinfo is not None


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("是", True),
        ("否", False),
        ("有", True),
        ("无", False),
        ("Y", True),
        ("n", False),
        ("TRUE", True),
        ("false", False),
        ("1", True),
        (0, False),
        ("√", True),
        ("×", False),
        (True, True),
        ("已发放", True),
    ],
)
def test_booleans(cell, expected):
    assert one("geohazard_point", "two_cards_issued", cell) == (expected, None)


def test_bad_boolean_and_field_specific_spelling():
    assert one("geohazard_point", "closed", "已销号") == (True, None)
    value, issue = one("geohazard_point", "closed", "也许")
    assert value is None
    assert "yes/no" in issue.reason


def test_text_is_trimmed_and_formulas_stay_text():
    assert one("enterprise", "name", "  甲公司\u3000") == ("甲公司", None)
    assert one("enterprise", "name", '=HYPERLINK("http://x","y")') == (
        '=HYPERLINK("http://x","y")',
        None,
    )
    assert one("enterprise", "address", "@SUM(A1)") == ("@SUM(A1)", None)
    assert one("enterprise", "address", "-12号") == ("-12号", None)


def test_text_refuses_nul_controls_and_overlong_cells():
    assert "NUL" in one("enterprise", "name", "甲\x00公司")[1].reason
    assert "control" in one("enterprise", "name", "甲\x1b[31m")[1].reason
    value, issue = one("enterprise", "name", "长" * 201)
    assert value is None
    assert "longer than 200" in issue.reason


def test_identifiers_are_normalised_and_checked():
    assert one("enterprise", "uscc", "９１４３ ０２００ｍａ４Ｌ００００ＯＸ") == (
        "91430200MA4L0000OX",
        None,
    )
    value, issue = one("enterprise", "uscc", "9143")
    assert value is None
    assert "18 characters" in issue.reason
    assert "'9143'" in issue.reason
    assert one("grid", "grid_code", 430204001001001) == ("430204001001001", None)
    assert one("grid", "grid_code", 430204001001001.0) == ("430204001001001", None)
    assert one("grid", "grid_code", "4.30204E+14")[0] is None


def test_blank_cells_default_or_fail_when_required():
    _, converted = run(
        "shelter",
        {
            "场所名称": ["甲", "/", None],
            "场所级别": ["县级", "县级", "-"],
            "开放状态": [None, "—", "开放"],
            "可容纳人数": ["", 10, "--"],
        },
    )
    assert converted.records["status"] == ["closed", "closed", "open"]
    assert converted.records["capacity"] == [0, 10, 0]
    assert converted.records["name"] == ["甲", None, None]
    assert converted.ok.tolist() == [True, False, False]
    assert [(p.row, p.column) for p in converted.problems] == [
        (3, "场所名称"),
        (4, "场所名称"),
        (4, "场所级别"),
    ]
    assert all("blank" in p.reason for p in converted.problems)


# ---------------------------------------------------------------------------
# convert(): records, problems, attributes
# ---------------------------------------------------------------------------
def test_problems_carry_the_file_rows_and_source_headers():
    columns = enterprise_columns(
        4,
        **{
            "从业人数(人)": ["12", "十二", "-5", "1,200人"],
            "风险等级（四色）": ["红", "紫", "蓝", "黄"],
        },
    )
    columns.pop("风险等级")
    _, converted = run("enterprise", columns, first_row=7)
    assert converted.records["employees"] == [12, None, None, 1200]
    assert converted.records["risk_level"] == ["red", None, "blue", "yellow"]
    assert converted.ok.tolist() == [True, False, False, True]
    found = [(p.row, p.column, p.repaired) for p in converted.problems]
    assert found == [
        (8, "从业人数(人)", False),
        (8, "风险等级（四色）", False),
        (9, "从业人数(人)", False),
    ]
    assert all(p.reason and p.reason_zh for p in converted.problems)


def test_repaired_values_keep_the_row():
    _, converted = run("enterprise", enterprise_columns(1, 行业类别=["建筑施工"]))
    assert converted.records["sector"] == ["other"]
    assert converted.ok.tolist() == [True]
    assert converted.problems[0].repaired


def test_records_hold_python_types_ready_for_copy():
    _, converted = run(
        "safety_hazard",
        {
            "隐患编号": ["430204-202403-001"],
            "隐患名称": ["消防通道堵塞"],
            "隐患等级": ["重大"],
            "是否挂牌督办": ["是"],
            "整改期限": ["2024/6/30"],
            "发现时间": ["2024-03-05 09:00"],
        },
    )
    record = {k: v[0] for k, v in converted.records.items()}
    assert record == {
        "hazard_no": "430204-202403-001",
        "title": "消防通道堵塞",
        "level": "major",
        "escalated": True,
        "deadline": dt.date(2024, 6, 30),
        "found_at": dt.datetime(2024, 3, 5, 9, 0, tzinfo=CHINA_TZ),
    }
    assert "status" not in converted.records  # absent column: never written, never blanked


def test_many_rows_are_parsed_per_distinct_value():
    n = 20_000
    columns = enterprise_columns(n, **{"从业人数": [str(i % 50) for i in range(n)]})
    _, converted = run("enterprise", columns)
    assert converted.ok.all()
    assert converted.records["employees"][:3] == [0, 1, 2]
    assert len(converted.attributes) == n


def test_unknown_columns_land_in_attributes_with_hostile_names_verbatim():
    hostile = 'a"; drop table x;--'
    columns = enterprise_columns(
        3,
        **{
            hostile: ["x", None, float("nan")],
            "备注": ["  说明 ", "", "NaN 不是数"],
            "面积": [1.5, float("nan"), float("inf")],
            "填报日期": [pd.Timestamp("2024-03-05"), pd.NaT, pd.Timestamp("2024-03-05 10:00")],
            "count": [np.int64(3), np.int64(4), np.int64(5)],
            "${jndi:ldap://x}": [True, False, None],
        },
    )
    _, converted = run("enterprise", columns)
    attributes = converted.attributes
    assert attributes[0] == {
        hostile: "x",
        "备注": "说明",
        "面积": 1.5,
        "填报日期": "2024-03-05",
        "count": 3,
        "${jndi:ldap://x}": True,
    }
    assert attributes[1] == {"count": 4, "${jndi:ldap://x}": False}
    assert attributes[2] == {
        "备注": "NaN 不是数",
        "面积": "inf",
        "填报日期": "2024-03-05T10:00:00",
        "count": 5,
    }
    text = json.dumps(attributes, ensure_ascii=False, allow_nan=False)
    assert "NaN," not in text
    assert hostile.replace('"', '\\"') in text


def test_attributes_refuse_nul_and_keep_nested_values():
    columns = enterprise_columns(
        2, **{"备注": ["ok\x00bad", "fine"], "tags": [["a", float("nan")], {"k": [1]}]}
    )
    _, converted = run("enterprise", columns)
    assert converted.ok.tolist() == [False, True]
    assert converted.problems[0].column == "备注"
    assert "NUL" in converted.problems[0].reason
    assert converted.attributes[0] == {"tags": ["a", None]}
    assert converted.attributes[1] == {"备注": "fine", "tags": {"k": [1]}}
    json.dumps(converted.attributes, allow_nan=False)


def test_enum_list_values_are_not_shared_between_rows():
    _, converted = run(
        "shelter",
        {"场所名称": ["甲", "乙"], "场所级别": ["县级", "县级"], "避灾种类": ["地震", "地震"]},
    )
    first, second = converted.records["hazard_types"]
    assert first == second == ["earthquake"]
    assert first is not second


def test_ignored_and_coordinate_columns_are_not_attributes():
    columns = enterprise_columns(1, 经度=[112.0], 纬度=[27.0], 备注=["x"])
    source = table(columns)
    match = match_columns(list(columns), ENTERPRISE, {"备注": "-"})
    converted = convert(source, match, ENTERPRISE)
    assert converted.attributes == [{}]
    assert set(converted.records) == {"uscc", "name", "sector", "risk_level"}


# ---------------------------------------------------------------------------
# Declarations agree with the database
# ---------------------------------------------------------------------------
GEOMETRY_TYPES = {
    "point": {"POINT"},
    "line": {"LINESTRING", "MULTILINESTRING"},
    "polygon": {"POLYGON", "MULTIPOLYGON"},
}
NATURAL_KEYS = {
    "enterprise": ("uscc",),
    "building": (),
    "facility": (),
    "geohazard_point": ("code",),
    "geohazard_zone": ("code",),
    "shelter": ("name",),
    "safety_hazard": ("hazard_no",),
    "forest_patch": ("code",),
    "fire_point": (),
    "barrier_line": (),
    "grid": ("grid_code",),
}


def enum_checks(table_name: str) -> dict[str, tuple[str, ...]]:
    """Column → allowed values, read back from the table's check constraints."""
    found: dict[str, tuple[str, ...]] = {}
    for constraint in Base.metadata.tables[table_name].constraints:
        if not isinstance(constraint, CheckConstraint):
            continue
        text = str(constraint.sqltext)
        match = re.search(r"(\w+) (?:IN \(|<@ ARRAY\[)((?:'[^']*'(?:, )?)+)", text)
        if match:
            found[match.group(1)] = tuple(re.findall(r"'([^']*)'", match.group(2)))
    found.pop("source_crs", None)
    return found


@pytest.mark.parametrize("target", list(TARGETS.values()), ids=list(TARGETS))
def test_declarations_match_the_database(target: TargetSpec):
    db_table = Base.metadata.tables[target.table]
    for spec in target.fields:
        assert spec.name in db_table.c, f"{target.table}.{spec.name} is not a column"
        column = db_table.c[spec.name]
        if spec.required and spec.name not in target.natural_key:
            assert not column.nullable, f"{spec.name} is required but nullable"
        if not column.nullable and column.server_default is not None and spec.kind != "datetime":
            assert spec.default is not None or spec.kind == "enum_list", (
                f"{spec.name} needs a default"
            )
    enums = {s.name: s.choices for s in target.fields if s.choices}
    assert enums == enum_checks(target.table)
    geometry = db_table.c["geom"].type.geometry_type
    assert geometry in GEOMETRY_TYPES[target.geometry]
    assert target.geometry_required == (not db_table.c["geom"].nullable)
    assert target.natural_key == NATURAL_KEYS[target.table]


def test_no_alias_of_a_target_is_a_coordinate_alias():
    coordinates = {normalize_header(a) for a in (*LON_ALIASES, *LAT_ALIASES)}
    for target in TARGETS.values():
        for spec in target.fields:
            assert not coordinates & {normalize_header(a) for a in spec.all_aliases}


# ---------------------------------------------------------------------------
# describe()
# ---------------------------------------------------------------------------
def test_describe_is_json_and_lists_headers_and_values():
    for target in TARGETS.values():
        entries = describe(target)
        json.dumps(entries, ensure_ascii=False, allow_nan=False)
        assert [e["field"] for e in entries][: len(target.fields)] == list(target.field_names)
    risk = next(e for e in describe(ENTERPRISE) if e["field"] == "risk_level")
    assert risk["title_zh"] == "风险等级"
    assert risk["required"]
    assert risk["headers"][:2] == ["风险等级", "风险等级(四色)"]
    assert risk["values"]["red"][:2] == ["红", "红色"]
    uscc = next(e for e in describe(ENTERPRISE) if e["field"] == "uscc")
    assert uscc["natural_key"]
    assert "18" in uscc["format"]
    assert [e["field"] for e in describe(ENTERPRISE)][-2:] == ["lon", "lat"]
    assert describe(TARGETS["grid"])[-1]["field"] == "community_code"


def test_column_match_is_a_plain_value():
    match = match_columns(list(enterprise_columns()), ENTERPRISE, {})
    assert isinstance(match, ColumnMatch)
    assert list(match.fields) == ["uscc", "name", "sector", "risk_level"]


def test_loose_override_fitting_two_columns_is_refused():
    with pytest.raises(FileRejected, match="several columns"):
        match_columns([*enterprise_columns(), "备 注", "备注 "], ENTERPRISE, {"备注": "-"})


def test_arrow_text_converts_as_python_text_does() -> None:
    """A sandboxed read hands text over as Arrow (``etl.portable``); the mapping factorises
    it there and must give the same records, attributes and problems, row for row."""
    from etl.portable import pack_column, unpack_frame

    columns = enterprise_columns(
        6,
        风险等级=["红", "橙色", None, "红", "紫", ""],
        备注=["甲", None, "𠀀丙", "甲", "", "乙"],
    )
    plain = table(columns)
    # As the readers make it: text as Python objects (``etl.readers.common.text_frame``).
    plain.frame = pd.DataFrame({h: pd.Series(v, dtype=object) for h, v in columns.items()})
    arrow = table(columns)
    arrow.frame = unpack_frame(
        {str(h): pack_column(plain.frame[h]) for h in plain.frame.columns}, len(plain)
    )
    assert all(isinstance(dtype, pd.ArrowDtype) for dtype in arrow.frame.dtypes)
    match = match_columns(list(plain.frame.columns), ENTERPRISE, {})
    expected = convert(plain, match, ENTERPRISE)
    got = convert(arrow, match, ENTERPRISE)
    assert got.records == expected.records
    assert got.attributes == expected.attributes
    assert got.ok.tolist() == expected.ok.tolist()
    assert [p.as_dict() for p in got.problems] == [p.as_dict() for p in expected.problems]
    assert any(p.column == "风险等级" for p in got.problems)  # 紫 is no colour
    assert arrow.cells("备注") == ["甲", None, "𠀀丙", "甲", "", "乙"]
