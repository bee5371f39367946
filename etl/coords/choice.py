"""Which coordinate system a file is in: the ``--crs`` option, a declared CRS, the transformers.

Only a short list of systems is accepted, because each one has to be converted to CGCS2000
without guessing: CGCS2000 and WGS84 (lon/lat or projected, e.g. Gauss-Krüger, UTM, Web
Mercator), GCJ-02 and BD-09 (display obfuscations, converted with the formulas of
:mod:`gis_service.crs`), and Xi'an 80 / Beijing 54 only when real transformation parameters
exist. The option never reaches PROJ as free text: URLs, PROJ strings and WKT are refused
before PROJ sees them, so a user can never make the server fetch anything (BAD_INPUTS B13).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, NoReturn

import numpy as np
import numpy.typing as npt
import pyproj.network
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from pyproj.transformer import TransformerGroup

from etl.model import FileRejected
from gis_service.crs import bd09_to_wgs84, gcj02_to_wgs84, wgs84_to_bd09, wgs84_to_gcj02

__all__ = [
    "STORAGE_EPSG",
    "CrsChoice",
    "CrsKind",
    "SourceCrs",
    "choice_from_crs",
    "choice_from_epsg",
    "from_lonlat",
    "is_lonlat_identity",
    "parse_crs_option",
    "pyproj_crs",
    "to_lonlat",
]

# A CRS declared in a file may name a grid; PROJ must never download it. Respect an explicit
# operator setting, otherwise switch the network off for this process.
os.environ.setdefault("PROJ_NETWORK", "OFF")
if os.environ["PROJ_NETWORK"].strip().upper() in {"OFF", "0", "NO", "FALSE"}:
    # pyproj re-exports it from a compiled module without ``__all__``.
    pyproj.network.set_network_enabled(active=False)  # type: ignore[attr-defined]

FloatArray = npt.NDArray[np.float64]

CrsKind = Literal["epsg", "wkt", "gcj02", "bd09"]
SourceCrs = Literal["CGCS2000", "WGS84", "GCJ02", "BD09", "XIAN80", "BEIJING54", "GK", "LOCAL"]

#: Storage CRS: CGCS2000 geographic, handled lon/lat first.
STORAGE_EPSG = 4490
_WGS84_EPSG = 4326

#: Rough China rectangle used to refuse projected CRSs defined for other countries.
_CHINA_WEST, _CHINA_SOUTH, _CHINA_EAST, _CHINA_NORTH = 73.0, 3.0, 136.0, 54.0

_GCJ_LABEL = "GCJ-02 (Amap/Tencent display coordinates, not a survey CRS)"
_BD_LABEL = "BD-09 (Baidu display coordinates, not a survey CRS)"

_OPTION_HELP = (
    "cgcs2000, wgs84, gcj02, bd09, xian80 or an EPSG code such as EPSG:4547 "
    "(CGCS2000 3-degree Gauss-Kruger CM 114E)"
)
_OPTION_HELP_ZH = (
    "cgcs2000、wgs84、gcj02、bd09、xian80 或 EPSG 代码"
    "（如 EPSG:4547，CGCS2000 3度带 中央经线114°E）"
)


@dataclass(frozen=True)
class CrsChoice:
    """The coordinate system the rows are read in, and how it was decided.

    Attributes:
        kind: ``"epsg"`` (``epsg`` names the CRS), ``"wkt"`` (a declared CRS without an EPSG
            equivalent, kept as ``wkt``: a custom projection, or Xi'an 80 / Beijing 54 with
            the file's own TOWGS84 parameters), ``"gcj02"`` or ``"bd09"`` (lon/lat shifted by
            the Chinese obfuscation formulas; no EPSG code exists for them).
        epsg: The EPSG code for ``kind == "epsg"``, else None.
        source_crs: The value recorded in each row's ``source_crs`` column.
        label: Human-readable name for reports, e.g.
            ``"CGCS2000 / 3-degree Gauss-Kruger CM 114E (EPSG:4547)"``.
        note: An assumption the report must show (e.g. a zone taken from the area's
            longitude), or None when nothing was assumed.
        wkt: WKT2 of the declared CRS for ``kind == "wkt"``, else None.
    """

    kind: CrsKind
    epsg: int | None
    source_crs: SourceCrs
    label: str
    note: str | None = None
    wkt: str | None = None

    @property
    def is_projected(self) -> bool:
        """True for metre-based systems (Gauss-Krüger, UTM, Web Mercator …)."""
        if self.kind in ("gcj02", "bd09"):
            return False
        return _crs_of(self).is_projected


# ------------------------------------------------------------------------------ options
_ALIASES: dict[str, int | Literal["gcj02", "bd09"]] = {
    "cgcs2000": STORAGE_EPSG,
    "cgcs": STORAGE_EPSG,
    "china2000": STORAGE_EPSG,
    "wgs84": _WGS84_EPSG,
    "crs84": _WGS84_EPSG,
    "ogc:crs84": _WGS84_EPSG,
    "gcj02": "gcj02",
    "gcj": "gcj02",
    "bd09": "bd09",
    "bd09ll": "bd09",
    "xian80": 4610,
    "xian1980": 4610,
    "beijing54": 4214,
    "beijing1954": 4214,
    "bj54": 4214,
}
_EPSG_RE = re.compile(r"(?:epsg:{1,2}|urn:ogc:def:crs:epsg:[0-9.]*:)?(\d{4,6})")


def parse_crs_option(value: str) -> CrsChoice:
    """Turn a user's ``--crs`` value into a :class:`CrsChoice`, refusing anything risky.

    Accepted (case-insensitive; spaces, ``-`` and ``_`` ignored): ``cgcs2000``, ``wgs84``
    (also ``crs84``), ``gcj02``/``gcj-02``, ``bd09``/``bd-09``, ``xian80``, ``beijing54``
    and ``EPSG:NNNN`` or a bare ``NNNN``. The EPSG code is looked up in PROJ's local database
    only. Xi'an 80 and Beijing 54 are accepted only if PROJ has a real (non-"ballpark")
    transformation to CGCS2000, because a ballpark conversion silently misplaces features.

    Args:
        value: The option text as the user typed it.

    Returns:
        The choice, with ``note`` None.

    Raises:
        FileRejected: For URLs, PROJ strings, WKT/PROJJSON, unknown names or EPSG codes,
            non-horizontal CRSs, datums other than CGCS2000/WGS84/Xi'an 80/Beijing 54,
            projected CRSs defined outside China, Xi'an 80/Beijing 54 without parameters,
            and Baidu Mercator (BD-09MC).
    """
    raw = value.strip()
    low = raw.lower()
    shown = raw[:60]
    if not raw:
        _refuse(
            "empty --crs value; use " + _OPTION_HELP,
            "--crs 为空；可用：" + _OPTION_HELP_ZH,
            code="crs_unsupported",
        )
    if "://" in low or low.startswith(("http", "www.", "file:", "ftp")):
        _refuse(
            f"--crs {shown!r}: URLs are not accepted (the server never fetches a CRS from the"
            f" network); use {_OPTION_HELP}",
            f"--crs {shown}：不接受网址（服务器不会从网络获取坐标系）；可用：{_OPTION_HELP_ZH}",
            code="crs_unsupported",
        )
    if "+proj" in low or low.startswith("+") or "+init" in low:
        _refuse(
            f"--crs {shown!r}: PROJ strings are not accepted; use {_OPTION_HELP}",
            f"--crs {shown}：不接受 PROJ 字符串；可用：{_OPTION_HELP_ZH}",
            code="crs_unsupported",
        )
    if "[" in low or "(" in low or "{" in low:
        _refuse(
            f"--crs {shown!r}: WKT/PROJJSON definitions are not accepted; use {_OPTION_HELP}"
            " (a .prj inside the file is read from the file itself)",
            f"--crs {shown}：不接受 WKT/PROJJSON 定义；可用：{_OPTION_HELP_ZH}"
            "（文件自带的 .prj 会被读取）",
            code="crs_unsupported",
        )
    key = re.sub(r"[\s\-_'’]", "", low)
    if key in ("bd09mc", "bdmc", "baidumercator"):
        _refuse(
            "--crs bd09mc: Baidu Mercator metres are not supported; export BD-09 lon/lat"
            " (bd09) from Baidu instead",
            "--crs bd09mc：不支持百度墨卡托米制坐标；请从百度导出 BD-09 经纬度（bd09）",
            code="crs_unsupported",
        )
    alias = _ALIASES.get(key)
    if alias == "gcj02":
        return CrsChoice(kind="gcj02", epsg=None, source_crs="GCJ02", label=_GCJ_LABEL)
    if alias == "bd09":
        return CrsChoice(kind="bd09", epsg=None, source_crs="BD09", label=_BD_LABEL)
    if key.endswith("crs84"):
        return CrsChoice("epsg", _WGS84_EPSG, "WGS84", "WGS 84 lon/lat (OGC:CRS84)")
    if isinstance(alias, int):
        return choice_from_epsg(alias)
    match = _EPSG_RE.fullmatch(key)
    if match is None:
        _refuse(
            f"unknown --crs {shown!r}; use {_OPTION_HELP}",
            f"无法识别的 --crs {shown}；可用：{_OPTION_HELP_ZH}",
            code="crs_unsupported",
        )
    return choice_from_epsg(int(match.group(1)))


def choice_from_epsg(code: int) -> CrsChoice:
    """Choice for an EPSG code from PROJ's local database, checked like a declared CRS.

    Args:
        code: The EPSG code.

    Returns:
        The choice (``kind="epsg"``).

    Raises:
        FileRejected: If the code is unknown or not acceptable (see :func:`parse_crs_option`).
    """
    try:
        crs = CRS.from_epsg(code)
    except CRSError:
        _refuse(
            f"EPSG:{code} is not a known CRS; use {_OPTION_HELP}",
            f"EPSG:{code} 不是已知的坐标系；可用：{_OPTION_HELP_ZH}",
            code="crs_unsupported",
        )
    return _classify(crs, code, f"EPSG:{code}")


# ------------------------------------------------------------------------- declared CRS
def choice_from_crs(crs: CRS) -> CrsChoice:
    """Recognise a CRS declared by a file (.prj, GeoPackage, GeoJSON ``crs``).

    Recognition goes through pyproj: ``to_epsg(min_confidence=70)`` identifies Esri-style
    .prj files such as ``CGCS2000_3_Degree_GK_CM_114E`` (EPSG:4547) or
    ``Xian_1980_3_Degree_GK_CM_114E`` (EPSG:2383). A hand-written Gauss-Krüger .prj on the
    CGCS2000 ellipsoid that PROJ cannot name is matched by its parameters (central meridian,
    false easting with or without the zone number). A declared TOWGS84 is honoured, which is
    the one way Xi'an 80 / Beijing 54 data gets accepted.

    Args:
        crs: The declared CRS.

    Returns:
        The choice; ``kind="wkt"`` when no EPSG code fits.

    Raises:
        FileRejected: If the CRS is not acceptable (see :func:`parse_crs_option`).
    """
    if crs.to_authority() == ("OGC", "CRS84"):
        return CrsChoice("epsg", _WGS84_EPSG, "WGS84", "WGS 84 lon/lat (OGC:CRS84)")
    if crs.is_bound:
        return _classify(crs, None, crs.name)
    code = crs.to_epsg(min_confidence=70)
    if code is not None:
        return choice_from_epsg(code)
    code = _gk_epsg_from_params(crs)
    if code is not None:
        choice = choice_from_epsg(code)
        return CrsChoice(
            choice.kind,
            choice.epsg,
            choice.source_crs,
            choice.label,
            note=f"the file's CRS {crs.name!r} has the parameters of {choice.label}",
        )
    return _classify(crs, None, crs.name)


def _classify(crs: CRS, code: int | None, shown: str) -> CrsChoice:
    """Check that ``crs`` is usable and build its choice (``kind`` epsg if ``code``, else wkt)."""
    horizontal = crs.sub_crs_list[0] if crs.is_compound else crs
    base = horizontal.source_crs if horizontal.is_bound else horizontal
    if base is None or not (base.is_geographic or base.is_projected):
        _refuse(
            f"{shown} ({crs.name}) is not a horizontal lon/lat or projected CRS",
            f"{shown}（{crs.name}）不是平面或经纬度坐标系",
            code="crs_unsupported",
        )
    datum = _datum_of(base)
    if datum is None:
        name = base.datum.name if base.datum is not None else "unknown"
        _refuse(
            f"{shown} ({crs.name}) uses the datum {name!r}; only CGCS2000, WGS84, Xi'an 80 and"
            " Beijing 54 are accepted",
            f"{shown}（{crs.name}）的大地基准 {name} 不受支持；"
            "仅接受 CGCS2000、WGS84、西安80、北京54",
            code="crs_unsupported",
        )
    area = base.area_of_use
    if area is not None and (
        area.east < _CHINA_WEST
        or area.west > _CHINA_EAST
        or area.north < _CHINA_SOUTH
        or area.south > _CHINA_NORTH
    ):
        _refuse(
            f"{shown} ({crs.name}) is defined for {area.west:g}…{area.east:g}°E,"
            f" {area.south:g}…{area.north:g}°N, not for China",
            f"{shown}（{crs.name}）的适用范围（东经 {area.west:g}…{area.east:g}°，"
            f"北纬 {area.south:g}…{area.north:g}°）不在中国境内",
            code="crs_unsupported",
        )
    source: SourceCrs
    if datum in ("XIAN80", "BEIJING54"):
        _require_parameters(horizontal, shown, datum)
        source = datum
    elif datum == "WGS84":
        source = "WGS84"
    elif base.is_projected and _is_transverse_mercator(base):
        source = "GK"
    else:
        source = "CGCS2000"
    if code is not None:
        return CrsChoice("epsg", code, source, _label(crs, code))
    suffix = " with the file's TOWGS84 parameters" if horizontal.is_bound else " (from the file)"
    return CrsChoice("wkt", None, source, f"{crs.name}{suffix}", wkt=horizontal.to_wkt())


def _label(crs: CRS, code: int) -> str:
    if code == STORAGE_EPSG:
        return "CGCS2000 lon/lat (EPSG:4490)"
    if code == _WGS84_EPSG:
        return "WGS 84 lon/lat (EPSG:4326)"
    return f"{crs.name} (EPSG:{code})"


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


#: (semi-major axis, inverse flattening) of the ellipsoids that identify a datum when a
#: hand-written .prj names none (Chinese GIS tools often write "unknown" or "D_unnamed").
_Datum = Literal["CGCS2000", "WGS84", "XIAN80", "BEIJING54"]
_ELLIPSOIDS: tuple[tuple[float, float, _Datum], ...] = (
    (6378137.0, 298.257222101, "CGCS2000"),
    (6378137.0, 298.257223563, "WGS84"),
    (6378140.0, 298.257, "XIAN80"),
    (6378245.0, 298.3, "BEIJING54"),
)


def _datum_of(crs: CRS) -> _Datum | None:
    """The accepted datum a CRS is based on, by datum name, else by ellipsoid if unnamed."""
    datum = crs.datum
    name = _norm(datum.name) if datum is not None else ""
    if "china2000" in name or "cgcs2000" in name:
        return "CGCS2000"
    if "worldgeodeticsystem1984" in name or "wgs1984" in name or "wgs84" in name:
        return "WGS84"
    if "xian1980" in name or "xian80" in name:
        return "XIAN80"
    if ("beijing1954" in name or "beijing54" in name) and "new" not in name:
        return "BEIJING54"
    if name and not any(word in name for word in ("unknown", "unnamed", "notspecified")):
        return None
    ellipsoid = crs.ellipsoid
    if ellipsoid is None:
        return None
    for a, rf, found in _ELLIPSOIDS:
        if math.isclose(ellipsoid.semi_major_metre, a, abs_tol=0.5) and math.isclose(
            ellipsoid.inverse_flattening, rf, abs_tol=1e-6
        ):
            return found
    return None


def _is_transverse_mercator(crs: CRS) -> bool:
    operation = crs.coordinate_operation
    if operation is None:
        return False
    method = operation.method_name.lower()
    return "transverse mercator" in method or "gauss" in method


def _gk_epsg_from_params(crs: CRS) -> int | None:
    """EPSG code of the CGCS2000 Gauss-Krüger zone a custom projected CRS is equal to."""
    if not crs.is_projected or crs.is_bound or _datum_of(crs) != "CGCS2000":
        return None
    if not _is_transverse_mercator(crs) or crs.coordinate_operation is None:
        return None
    if any(axis.unit_conversion_factor != 1.0 for axis in crs.axis_info):
        return None
    params = {
        p.code: float(p.value)
        for p in crs.coordinate_operation.params
        if isinstance(p.value, int | float)
    }
    lat0, cm, k = params.get("8801", 0.0), params.get("8802"), params.get("8805", 1.0)
    fe, fn = params.get("8806", 0.0), params.get("8807", 0.0)
    if cm is None or lat0 != 0.0 or k != 1.0 or fn != 0.0 or cm % 3 != 0:
        return None
    icm = int(cm)
    if not 75 <= icm <= 135:
        return None
    if fe == 500_000.0:
        return 4534 + (icm - 75) // 3
    zone, rest = divmod(fe, 1_000_000.0)
    if rest != 500_000.0:
        return None
    if 25 <= zone <= 45 and icm == 3 * zone:
        return 4513 + int(zone) - 25
    if 13 <= zone <= 23 and icm == 6 * zone - 3:
        return 4491 + int(zone) - 13
    return None


def _require_parameters(crs: CRS, shown: str, datum: str) -> None:
    """Refuse Xi'an 80 / Beijing 54 unless a real transformation to CGCS2000 exists.

    PROJ only knows a "ballpark" (no-op) offset between these datums and CGCS2000, which would
    store every feature shifted by an unknown amount. A .prj with TOWGS84 parameters (a bound
    CRS), or a PROJ database with a real transformation, is required.
    """
    if crs.is_bound:
        return
    group = TransformerGroup(crs, CRS.from_epsg(STORAGE_EPSG), always_xy=True)
    if any("ballpark" not in t.description.lower() for t in group.transformers):
        return
    human = "Xi'an 80" if datum == "XIAN80" else "Beijing 54"
    human_zh = "西安80" if datum == "XIAN80" else "北京54"
    _refuse(
        f"{human} without transformation parameters: {shown} ({crs.name}) cannot be converted"
        " to CGCS2000 reliably; convert the data to CGCS2000 first, or supply a .prj with"
        " TOWGS84 parameters from your surveying department",
        f"{human_zh}坐标缺少转换参数：{shown}（{crs.name}）无法可靠转换为 CGCS2000；请先转换为"
        " CGCS2000，或提供含 TOWGS84 七参数的 .prj（向测绘部门索取）",
        code="crs_no_parameters",
    )


def _refuse(detail: str, detail_zh: str, *, code: str) -> NoReturn:
    raise FileRejected(detail, detail_zh, code=code)


# ---------------------------------------------------------------------- transformations
def _crs_of(choice: CrsChoice) -> CRS:
    if choice.kind == "wkt" and choice.wkt is not None:
        return _crs_from_wkt(choice.wkt)
    return _crs_from_epsg(choice.epsg if choice.epsg is not None else _WGS84_EPSG)


def pyproj_crs(choice: CrsChoice) -> CRS | None:
    """The pyproj CRS of a choice (cached), or None for GCJ-02/BD-09, which have none.

    Args:
        choice: The choice.

    Returns:
        The CRS, e.g. to read its area of use or write it into an export's .prj.
    """
    if choice.kind in ("gcj02", "bd09"):
        return None
    return _crs_of(choice)


@lru_cache(maxsize=64)
def _crs_from_epsg(code: int) -> CRS:
    return CRS.from_epsg(code)


@lru_cache(maxsize=16)
def _crs_from_wkt(wkt: str) -> CRS:
    return CRS.from_wkt(wkt)


@lru_cache(maxsize=64)
def _transformer(source: int | str, target: int | str) -> Transformer:
    """Cached transformer between two CRSs given as EPSG code or WKT (x = lon/easting)."""
    src = _crs_from_epsg(source) if isinstance(source, int) else _crs_from_wkt(source)
    dst = _crs_from_epsg(target) if isinstance(target, int) else _crs_from_wkt(target)
    return Transformer.from_crs(src, dst, always_xy=True)


def _endpoints(choice: CrsChoice) -> tuple[int | str, int]:
    """(source key, lon/lat target) for pyproj; a bound CRS goes to WGS84 to use its TOWGS84."""
    if choice.kind == "wkt" and choice.wkt is not None:
        target = _WGS84_EPSG if _crs_from_wkt(choice.wkt).is_bound else STORAGE_EPSG
        return choice.wkt, target
    if choice.epsg is None:
        msg = f"CRS choice {choice.label!r} has neither an EPSG code nor a WKT"
        raise ValueError(msg)
    return choice.epsg, STORAGE_EPSG


def is_lonlat_identity(choice: CrsChoice) -> bool:
    """CGCS2000 and WGS84 lon/lat are stored as they are (they differ by well under 1 m)."""
    return choice.kind == "epsg" and choice.epsg in (STORAGE_EPSG, _WGS84_EPSG)


def to_lonlat(choice: CrsChoice, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Convert coordinate arrays in ``choice`` to CGCS2000 lon/lat (vectorised).

    Args:
        choice: The source system.
        x: Easting or longitude values.
        y: Northing or latitude values.

    Returns:
        ``(lon, lat)`` float arrays; points PROJ cannot convert become ``inf``. GCJ-02/BD-09
        points outside China are returned unchanged (the formulas do not apply there).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if choice.kind == "gcj02":
        lon, lat = gcj02_to_wgs84(x, y)
        return lon, lat
    if choice.kind == "bd09":
        lon, lat = bd09_to_wgs84(x, y)
        return lon, lat
    if is_lonlat_identity(choice):
        return x.copy(), y.copy()
    source, target = _endpoints(choice)
    lon, lat = _transformer(source, target).transform(x, y, errcheck=False)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def from_lonlat(
    choice: CrsChoice, lon: FloatArray, lat: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Convert CGCS2000 lon/lat arrays to ``choice`` (the inverse of :func:`to_lonlat`).

    Args:
        choice: The target system.
        lon: Longitudes in degrees.
        lat: Latitudes in degrees.

    Returns:
        ``(x, y)`` float arrays in the target system.
    """
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    if choice.kind == "gcj02":
        x, y = wgs84_to_gcj02(lon, lat)
        return x, y
    if choice.kind == "bd09":
        x, y = wgs84_to_bd09(lon, lat)
        return x, y
    if is_lonlat_identity(choice):
        return lon.copy(), lat.copy()
    source, target = _endpoints(choice)
    x, y = _transformer(target, source).transform(lon, lat, errcheck=False)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
