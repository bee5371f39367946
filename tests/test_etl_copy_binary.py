"""Binary COPY rows built column by column (``etl.copy_binary``) read back by PostgreSQL.

The oracle is PostgreSQL itself: the same values inserted through ordinary bound parameters
must come back identical to the ones written through the encoded COPY buffer, NULLs, edge
integers, Chinese text, JSON and multi-part promotion included.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import psycopg
import shapely

from etl import copy_binary
from etl.load import wkb_field
from gis_service.demo import loader

_COLUMNS = (
    "t text, v varchar(20), s smallint, i integer, b bigint, f double precision,"
    " ok boolean, j jsonb, c text, g geometry(MultiPolygon, 4490)"
)


def _values() -> dict[str, list[Any]]:
    return {
        "t": ["石峰区", None, "", "a\tb\nc\\d"],
        "v": ["红", "重大风险", None, "x" * 20],
        "s": [-(2**15), 0, None, 2**15 - 1],
        "i": [-(2**31), 7, 2**31 - 1, None],
        "b": [None, -(2**63), 2**63 - 1, 42],
        "f": [0.1, float("nan"), None, -1e300],
        "ok": [True, False, None, True],
        "j": [json.dumps({"名称": "楼"}, ensure_ascii=False), "{}", '{"n": [1, null]}', "{}"],
    }


def test_encoded_rows_read_back_as_the_values(make_database: Any) -> None:
    url = make_database("copybin")
    values = _values()
    square = shapely.box(113.0, 27.8, 113.001, 27.801)
    geoms = np.array(
        [
            square,
            shapely.multipolygons([square, shapely.box(113.1, 27.9, 113.2, 28.0)]),
            None,
            square,
        ],
        dtype=object,
    )
    keep = np.array([True, True, False, True])
    with psycopg.connect(loader.psycopg_conninfo(url)) as conn:
        conn.execute(f"CREATE TABLE viacopy ({_COLUMNS})")
        conn.execute(f"CREATE TABLE viaparams ({_COLUMNS})")
        oids = [25, 1043, 21, 23, 20, 701, 16]
        fields = [
            copy_binary.encode_values(values[name], oid)
            for name, oid in zip(["t", "v", "s", "i", "b", "f", "ok"], oids, strict=True)
        ]
        fields.append(copy_binary.encode_jsonb(values["j"]))
        fields.append(copy_binary.encode_constant("常量".encode(), 4))
        fields.append(wkb_field(geoms, "MULTIPOLYGON"))
        with conn.cursor().copy("COPY viacopy FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(copy_binary.SIGNATURE)
            copy.write(copy_binary.rows(fields, keep))
            copy.write(copy_binary.TRAILER)
        for r in range(4):
            if not keep[r]:
                continue
            conn.execute(
                "INSERT INTO viaparams VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s,"
                " ST_Multi(ST_GeomFromWKB(%s, 4490)))",
                [
                    *(values[k][r] for k in ("t", "v", "s", "i", "b", "f", "ok", "j")),
                    "常量",
                    shapely.to_wkb(geoms[r]),
                ],
            )
        query = "SELECT t, v, s, i, b, f::text, ok, j, c, ST_AsText(g) FROM {} ORDER BY ctid"
        got = conn.execute(query.format("viacopy")).fetchall()
        want = conn.execute(query.format("viaparams")).fetchall()
        assert got == want
        assert len(got) == 3
        assert got[0][0] == "石峰区"
        assert got[0][9].startswith("MULTIPOLYGON(((")  # the lone polygon promoted
        assert got[1][9].count("((") == 2
        conn.rollback()


def test_no_row_kept_gives_no_bytes() -> None:
    fields = [copy_binary.encode_values(["a", "b"], 25)]
    assert copy_binary.rows(fields, np.array([False, False])) == b""
