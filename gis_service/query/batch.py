"""Batch locate input: a JSON list or a CSV (a 12345 hotline export, an Amap table).

Rows with unusable coordinates are not a reason to refuse the other 9,999: each gets an
``error`` in the answer, like the import report does. What refuses the whole batch (before any
SQL): a malformed body, no coordinate columns, or more than :data:`params.MAX_BATCH` rows.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from gis_service.errors import FieldProblem, InvalidInput, TooLarge
from gis_service.query.locate import Located
from gis_service.query.params import MAX_BATCH, InputCrs, bad_points, to_storage

LON_NAMES = ("lon", "lng", "longitude", "x", "经度", "gcj_lng", "bd_lng")
LAT_NAMES = ("lat", "latitude", "y", "纬度", "gcj_lat", "bd_lat")
ID_NAMES = ("id", "编号", "工单号", "序号", "no")
ADDRESS_NAMES = ("address", "地址", "详细地址", "事发地址")

#: Columns of a batch answer (keys of :meth:`Located.flat` plus the input echo) and headers.
COLUMNS = (
    "row",
    "id",
    "address",
    "input_lon",
    "input_lat",
    "error",
    "found",
    "cgcs2000_lon",
    "cgcs2000_lat",
    "county",
    "township",
    "village_code",
    "village",
    "grid_code",
    "grid_name",
    "grid_worker",
    "grid_worker_phone",
    "grid_leader",
    "grid_leader_phone",
    "geohazard_points",
    "geohazard_village_leads",
    "nearest_shelter",
    "nearest_shelter_m",
    "nearest_open_shelter",
    "nearest_open_shelter_m",
)
HEADERS = (
    "行号",
    "编号",
    "地址",
    "输入经度",
    "输入纬度",
    "错误",
    "已定位",
    "CGCS2000经度",
    "CGCS2000纬度",
    "区县",
    "乡镇街道",
    "村社区代码",
    "村社区",
    "网格编码",
    "网格名称",
    "网格员",
    "网格员电话",
    "网格长",
    "网格长电话",
    "地灾隐患点",
    "村级防灾责任人",
    "最近避难场所",
    "最近避难场所距离米",
    "最近开放避难场所",
    "最近开放避难场所距离米",
)


@dataclass
class Batch:
    """Parsed batch: input rows, their storage coordinates and the rows that are unusable."""

    ids: list[Any] = field(default_factory=list)
    addresses: list[str | None] = field(default_factory=list)
    input_lon: list[float | None] = field(default_factory=list)
    input_lat: list[float | None] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def storage(self, system: InputCrs) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Usable rows converted to storage coordinates; marks the rest in ``errors``."""
        lon = np.array([math.nan if v is None else v for v in self.input_lon], dtype=np.float64)
        lat = np.array([math.nan if v is None else v for v in self.input_lat], dtype=np.float64)
        finite = np.isfinite(lon) & np.isfinite(lat)
        x, y = lon.copy(), lat.copy()
        if finite.any():
            x[finite], y[finite] = to_storage(lon[finite], lat[finite], system)
        for i in np.flatnonzero(bad_points(x, y)):
            self.errors.setdefault(int(i), "coordinates missing, not finite or outside China")
        return x, y

    def rows(self, located: dict[int, Located]) -> list[dict[str, Any]]:
        """Answer rows in input order (``located`` keyed by input index)."""
        out = []
        memo: dict[int, dict[str, Any]] = {}
        for i in range(len(self)):
            row: dict[str, Any] = {
                "row": i + 1,
                "id": self.ids[i],
                "address": self.addresses[i],
                "input_lon": self.input_lon[i],
                "input_lat": self.input_lat[i],
                "error": self.errors.get(i),
            }
            hit = located.get(i)
            row.update(hit.flat(memo) if hit is not None else {"found": False})
            out.append(row)
        return out


def _too_many(n: int) -> TooLarge:
    return TooLarge(
        detail=f"{n} points; a batch holds at most {MAX_BATCH}",
        detail_zh=f"共 {n} 个点，单批最多 {MAX_BATCH} 个",
        fields=[FieldProblem("body", "too many points")],
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def from_json(body: bytes) -> tuple[Batch, InputCrs | None]:
    """``{"crs": "gcj02", "points": [{"id": …, "lon": …, "lat": …} | [lon, lat], …]}``."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidInput(
            detail="the body is not valid JSON (NaN and Infinity are not JSON)",
            detail_zh="请求体不是合法 JSON",
            fields=[FieldProblem("body", "invalid JSON")],
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("points"), list):
        raise InvalidInput(
            detail='expected {"points": [...]}',
            detail_zh="缺少 points 列表",
            fields=[FieldProblem("body.points", "required list")],
        )
    unknown = sorted(set(doc) - {"points", "crs"})
    if unknown:
        raise InvalidInput(
            detail=f"unknown field: {', '.join(k[:40] for k in unknown[:5])}",
            detail_zh="未知字段",
            fields=[FieldProblem(f"body.{unknown[0][:40]}", "unknown field")],
        )
    system = None
    if "crs" in doc:
        try:
            system = InputCrs(doc["crs"])
        except ValueError:
            raise InvalidInput(
                detail="crs must be wgs84, cgcs2000, gcj02 or bd09",
                detail_zh="坐标系须为 wgs84、cgcs2000、gcj02 或 bd09",
                fields=[FieldProblem("body.crs", "unknown coordinate system")],
            ) from None
    points = doc["points"]
    if len(points) > MAX_BATCH:
        raise _too_many(len(points))
    batch = Batch()
    for i, p in enumerate(points):
        if isinstance(p, list) and len(p) == 2:
            pid, addr, x, y = None, None, _number(p[0]), _number(p[1])
        elif isinstance(p, dict):
            pid = p.get("id")
            addr = p.get("address")
            x, y = _number(p.get("lon")), _number(p.get("lat"))
        else:
            pid, addr, x, y = None, None, None, None
        batch.ids.append(pid if isinstance(pid, str | int) else None)
        batch.addresses.append(addr if isinstance(addr, str) else None)
        batch.input_lon.append(x)
        batch.input_lat.append(y)
        if x is None or y is None:
            batch.errors[i] = "lon/lat missing or not numbers"
    return batch, system


def _decode(data: bytes) -> str:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise InvalidInput(
        detail="the CSV is neither UTF-8 nor GB18030",
        detail_zh="CSV 编码无法识别（应为 UTF-8 或 GBK）",
        fields=[FieldProblem("body", "unknown encoding")],
    )


def _find(header: list[str], names: tuple[str, ...]) -> int | None:
    folded = [h.strip().lower() for h in header]
    for n in names:
        if n in folded:
            return folded.index(n)
    return None


def from_csv(data: bytes) -> Batch:
    """A CSV with a header naming the longitude and latitude columns (经度/纬度, lng/lat …)."""
    text = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    if not header:
        raise InvalidInput(
            detail="the CSV is empty", detail_zh="CSV 为空", fields=[FieldProblem("body", "empty")]
        )
    ix, iy = _find(header, LON_NAMES), _find(header, LAT_NAMES)
    if ix is None or iy is None:
        raise InvalidInput(
            detail="the CSV needs longitude and latitude columns (lon/lat, lng, 经度/纬度)",
            detail_zh="CSV 缺少经度、纬度列",
            fields=[FieldProblem("body", "no coordinate columns")],
        )
    iid, iaddr = _find(header, ID_NAMES), _find(header, ADDRESS_NAMES)
    batch = Batch()
    for i, rec in enumerate(reader):
        if not any(c.strip() for c in rec):
            continue
        if len(batch) >= MAX_BATCH:
            raise _too_many(len(batch) + 1)

        def cell(j: int | None, r: list[str] = rec) -> str | None:
            return r[j] if j is not None and j < len(r) else None

        x, y = _number(cell(ix)), _number(cell(iy))
        batch.ids.append(cell(iid))
        batch.addresses.append(cell(iaddr))
        batch.input_lon.append(x)
        batch.input_lat.append(y)
        if x is None or y is None:
            batch.errors[len(batch) - 1] = f"CSV line {i + 2}: lon/lat missing or not numbers"
    return batch
