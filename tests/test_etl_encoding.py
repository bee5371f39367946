"""Strict encoding detection for DBF and CSV text (BAD_INPUTS C4).

Every shapefile here is written by pyogrio in the test, then byte-edited where a case
needs it (a removed or lying .cpg, a patched language-driver byte). Every round trip
must give back exactly the strings written: no U+FFFD, no mojibake.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import geopandas as gpd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point

from etl.encoding import (
    DbfText,
    cpg_codec,
    detect_text_encoding,
    gdal_encoding_name,
    normalise_encoding,
    read_dbf_layout,
)
from etl.model import FileRejected
from etl.readers import read_file

NAMES = ["石峰区危险化学品有限公司", "株洲市荷塘区应急管理局", "清水塘街道"]
GB18030_ONLY = ["䶮", "𠀀𠀁", "㐀开发区"]  # CJK Ext-A/B: four-byte GB18030, not in GBK
LDID_OFFSET = 29


def write_shp(
    folder: Path, stem: str, names: list[str], *, encoding: str | None, cpg: bool = True
) -> Path:
    """A point shapefile with a Chinese text column and a Chinese field name."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = gpd.GeoDataFrame(
        {"名称": names, "编号": list(range(len(names)))},
        geometry=[Point(113.1 + i / 100, 27.8) for i in range(len(names))],
        crs=4490,
    )
    path = folder / f"{stem}.shp"
    frame.to_file(path, engine="pyogrio", encoding=encoding)
    if not cpg:
        path.with_suffix(".cpg").unlink(missing_ok=True)
    return path


def set_ldid(shp: Path, ldid: int) -> None:
    dbf = shp.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    data[LDID_OFFSET] = ldid
    dbf.write_bytes(bytes(data))


def assert_exact(table_names: list[object], expected: list[str]) -> None:
    assert table_names == expected
    assert all("\ufffd" not in str(v) for v in table_names)


# --- unit rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "codec"),
    [("GBK", "gb18030"), ("gb2312", "gb18030"), ("cp936", "gb18030"), ("UTF8", "utf-8")],
)
def test_normalise_encoding_widens_gbk_family(given: str, codec: str) -> None:
    assert normalise_encoding(given) == codec


@pytest.mark.parametrize("name", ["klingon-8", "base64", "zlib"])
def test_normalise_encoding_refuses_unknown_and_non_text_codecs(name: str) -> None:
    with pytest.raises(FileRejected) as err:
        normalise_encoding(name)
    assert err.value.code == "unknown_encoding"


@pytest.mark.parametrize(
    ("text", "codec"),
    [("UTF-8", "utf-8"), ("936", "gb18030"), ("65001\r\n", "utf-8"), ("ANSI 1252", "cp1252")],
)
def test_cpg_codec_reads_names_and_code_page_numbers(text: str, codec: str) -> None:
    assert cpg_codec(text) == codec


def test_cpg_codec_ignores_garbage() -> None:
    assert cpg_codec("") is None
    assert cpg_codec("no-such-codepage") is None


def test_gdal_names_are_upper_case_for_iconv() -> None:
    assert gdal_encoding_name("iso8859-1") == "ISO-8859-1"
    assert gdal_encoding_name("gb18030") == "GB18030"
    assert gdal_encoding_name("utf-8") == "UTF8"  # through iconv, see the docstring


# --- DBF detection ----------------------------------------------------------------------


def test_gbk_no_cpg_falls_back_to_strict_gb18030(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "gbk_no_cpg", "gbk_no_cpg", NAMES, encoding="gbk", cpg=False)
    assert read_dbf_layout(shp.with_suffix(".dbf")).ldid == 0x00  # what GDAL writes
    table = read_file(shp)
    assert table.encoding == "gb18030"
    assert any("strict GB18030" in note for note in table.notes)
    assert list(table.frame.columns) == ["名称", "编号"]
    assert_exact(table.frame["名称"].tolist(), NAMES)


def test_gbk_ldid_4d_is_trusted_after_a_strict_check(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "gbk_ldid_4d", "gbk_ldid_4d", NAMES, encoding="gbk", cpg=False)
    set_ldid(shp, 0x4D)
    table = read_file(shp)
    assert table.encoding == "gb18030"
    assert any("language driver 0x4D" in note for note in table.notes)
    assert_exact(table.frame["名称"].tolist(), NAMES)


def test_ldid_57_ansi_says_nothing_so_content_decides(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "ansi", "ldid_57", NAMES, encoding="gbk", cpg=False)
    set_ldid(shp, 0x57)
    table = read_file(shp)
    assert table.encoding == "gb18030"
    assert any("0x57" in note for note in table.notes)


def test_utf8_with_cpg(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "utf8_with_cpg", "utf8_with_cpg", NAMES, encoding=None)
    assert shp.with_suffix(".cpg").read_text().strip().upper() in {"UTF-8", "UTF8"}
    table = read_file(shp)
    assert table.encoding == "utf-8"
    assert any(".cpg" in note for note in table.notes)
    assert_exact(table.frame["名称"].tolist(), NAMES)


def test_cpg_says_utf8_but_bytes_are_gbk(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "liar", "cpg_says_utf8_but_gbk", NAMES, encoding="gbk")
    shp.with_suffix(".cpg").write_text("UTF-8")
    table = read_file(shp)
    assert table.encoding == "gb18030"
    assert any("not valid utf-8" in note for note in table.notes)
    assert_exact(table.frame["名称"].tolist(), NAMES)


def test_cpg_says_gbk_but_bytes_are_utf8_is_read_as_utf8(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "liar2", "cpg_says_gbk_but_utf8", NAMES, encoding=None)
    shp.with_suffix(".cpg").write_text("GBK")
    table = read_file(shp)
    assert table.encoding == "utf-8"
    assert any("valid UTF-8" in note for note in table.notes)
    assert_exact(table.frame["名称"].tolist(), NAMES)


def test_gb18030_only_characters_round_trip(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "ext_b", "gb18030_only", GB18030_ONLY, encoding="gb18030", cpg=False)
    raw = shp.with_suffix(".dbf").read_bytes()
    assert "𠀀".encode("gb18030") in raw  # really four-byte GB18030 on disk
    table = read_file(shp)
    assert table.encoding == "gb18030"
    assert_exact(table.frame["名称"].tolist(), GB18030_ONLY)


def test_explicit_encoding_overrides_and_is_reported_as_gb18030(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "explicit", "explicit_gbk", NAMES, encoding="gbk")
    shp.with_suffix(".cpg").write_text("UTF-8")  # the explicit choice beats the .cpg
    table = read_file(shp, encoding="GBK")
    assert table.encoding == "gb18030"
    assert any("given explicitly" in note for note in table.notes)
    assert_exact(table.frame["名称"].tolist(), NAMES)


def test_explicit_encoding_that_does_not_decode_is_refused(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "wrong", "explicit_wrong", NAMES, encoding="gbk")
    with pytest.raises(FileRejected) as err:
        read_file(shp, encoding="utf-8")
    assert err.value.code == "encoding_mismatch"


def test_undecodable_dbf_asks_for_encoding(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "garbage", "undecodable", NAMES, encoding="gbk", cpg=False)
    dbf = shp.with_suffix(".dbf")
    data = dbf.read_bytes()
    start = data.index(NAMES[0].encode("gbk"))
    dbf.write_bytes(data[:start] + b"\xff\xff\x80" + data[start + 3 :])
    with pytest.raises(FileRejected) as err:
        read_file(shp)
    assert err.value.code == "encoding_undetermined"
    assert "--encoding" in err.value.detail
    assert "--encoding" in err.value.detail_zh


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [(None, ["企业名", "A危险化"]), ("gbk", ["企业名称", "A危险化学"])],
)
def test_field_names_cut_inside_a_character(
    tmp_path: Path, encoding: str | None, expected: list[str]
) -> None:
    """GDAL cuts 「企业名称」 (12 UTF-8 bytes) and 「A危险化学品」 at 10 bytes, mid-character."""
    folder = tmp_path / f"long_names_{encoding}"
    folder.mkdir()
    frame = gpd.GeoDataFrame(
        {"企业名称": NAMES, "A危险化学品": ["是", "否", "是"]},
        geometry=[Point(113.1, 27.8)] * 3,
        crs=4490,
    )
    shp = folder / "long_names.shp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GDAL's own "laundered field name" warnings
        frame.to_file(shp, engine="pyogrio", encoding=encoding)
    shp.with_suffix(".cpg").unlink()
    table = read_file(shp)
    assert list(table.frame.columns) == expected
    assert table.frame[expected[0]].tolist() == NAMES
    assert any("cut inside a character" in note for note in table.notes)


def test_mixed_gbk_and_utf8_records_are_refused(tmp_path: Path) -> None:
    """GB18030 would decode the UTF-8 record "successfully" into mojibake."""
    shp = write_shp(tmp_path / "mixed", "mixed_encodings", NAMES, encoding="gbk", cpg=False)
    dbf = shp.with_suffix(".dbf")
    gbk = NAMES[1].encode("gbk")
    utf8 = "石峰".encode()  # six bytes that GB18030 happily decodes as mojibake
    dbf.write_bytes(dbf.read_bytes().replace(gbk, utf8 + b" " * (len(gbk) - len(utf8))))
    with pytest.raises(FileRejected) as err:
        read_file(shp)
    assert err.value.code == "encoding_mixed"
    assert "records 2" in err.value.detail


def test_truncated_dbf_is_refused_before_gdal(tmp_path: Path) -> None:
    shp = write_shp(tmp_path / "short", "truncated_dbf", NAMES, encoding="gbk")
    dbf = shp.with_suffix(".dbf")
    dbf.write_bytes(dbf.read_bytes()[:-40])
    with pytest.raises(FileRejected) as err:
        read_file(shp)
    assert err.value.code == "shapefile_corrupt"
    assert "truncated" in err.value.detail


def test_dbf_text_blocks_separate_values(tmp_path: Path) -> None:
    """A lead byte ending one value must not pair with the first byte of the next."""
    shp = write_shp(tmp_path / "sep", "separated", ["甲", "乙"], encoding="gbk", cpg=False)
    dbf = shp.with_suffix(".dbf")
    layout = read_dbf_layout(dbf)
    ((_, width),) = layout.text_fields
    (column,) = DbfText(dbf, layout).columns()
    assert layout.names[0] == "名称".encode("gbk")
    assert len(column) == layout.records * (width + 1)
    assert column[width] == column[2 * width + 1] == 0x0A
    assert column.startswith("甲".encode("gbk"))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(
        st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1, max_size=12),
        min_size=1,
        max_size=4,
    ),
    encoding=st.sampled_from(["gbk", "gb18030", None]),
)
def test_random_cjk_strings_round_trip_byte_exact(names: list[str], encoding: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shp = write_shp(Path(tmp), "prop", names, encoding=encoding, cpg=False)
        table = read_file(shp)
        assert_exact(table.frame["名称"].tolist(), names)


# --- CSV detection ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "label", "rule"),
    [
        ("utf-8", "utf-8", "strict UTF-8"),
        ("utf-8-sig", "utf-8", "byte-order mark"),
        ("gbk", "gb18030", "strict GB18030"),
        ("utf-16", "utf-16", "byte-order mark"),
    ],
)
def test_text_encoding_detection(tmp_path: Path, codec: str, label: str, rule: str) -> None:
    path = tmp_path / f"ledger_{codec}.csv"
    path.write_bytes("名称,地址\n石峰区化工厂,清水塘\n".encode(codec))
    choice = detect_text_encoding(path)
    assert choice.label == label
    assert rule in choice.rule


def test_text_that_is_neither_utf8_nor_gb18030_names_lines(tmp_path: Path) -> None:
    path = tmp_path / "undecodable.csv"
    path.write_bytes("名称\n".encode() + b"ok\n\xff\xfe\x80 bad\n")
    with pytest.raises(FileRejected) as err:
        detect_text_encoding(path)
    assert "line 3" in err.value.detail


def test_explicit_text_encoding_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes("名称\n石峰区\n".encode("gbk"))
    with pytest.raises(FileRejected) as err:
        detect_text_encoding(path, "utf-8")
    assert err.value.code == "encoding_mismatch"
    assert detect_text_encoding(path, "gb2312").label == "gb18030"
