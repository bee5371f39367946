"""An imported 隐患 ledger gets the event history the monthly statistics count."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from etl.pipeline import ImportOptions, run_import
from gis_service.api.app import create_app
from gis_service.demo.loader import psycopg_conninfo
from gis_service.settings import Settings, load_settings
from tests.fixtures import private_demo


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


LIMITS = load_settings(environment="test").etl


def test_imported_hazards_get_a_history(demo_url: str, tmp_path: Path) -> None:
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        spots = c.execute(
            "SELECT ST_X(ST_PointOnSurface(boundary)), ST_Y(ST_PointOnSurface(boundary))"
            " FROM admin_division WHERE level = 'village' AND code LIKE '430204%'"
            " ORDER BY code LIMIT 2"
        ).fetchall()
    (x1, y1), (x2, y2) = spots
    path = tmp_path / "台账.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["隐患编号", "隐患名称", "隐患等级", "整改状态", "发现时间", "销号时间", "经度", "纬度"]
        )
        w.writerow(
            [
                "IMP-H-001",
                "配电箱未接地",
                "一般",
                "已销号",
                "2026-03-01",
                "2026-03-11",
                x1,
                y1,
            ]
        )
        w.writerow(["IMP-H-002", "消防通道堵塞", "重大", "待整改", "2026-03-05", "", x2, y2])
    report = run_import(
        demo_url,
        path,
        ImportOptions(target="safety_hazard", crs="cgcs2000"),
        limits=LIMITS,
        actor="a_admin",
        scope_code="430204",
    )
    assert report.status == "succeeded", (report.error_detail, report.problems[:3])
    assert any("ledger events" in n for n in report.notes)
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        rows: list[Any] = c.execute(
            "SELECT h.hazard_no, h.status, array_agg(e.to_status ORDER BY e.at, e.id),"
            " max(e.at) = coalesce(h.closed_at, h.found_at), bool_and(e.actor = 'a_admin')"
            " FROM safety_hazard h JOIN hazard_event e ON e.hazard_id = h.id"
            " WHERE h.hazard_no LIKE 'IMP-H-%' GROUP BY h.id ORDER BY h.hazard_no"
        ).fetchall()
    assert [r[0] for r in rows] == ["IMP-H-001", "IMP-H-002"]
    closed, found = rows
    assert closed[1] == "closed"
    assert closed[2] == ["found", "assigned", "rectifying", "closeout_requested", "closed"]
    assert closed[3] is True  # the 销号 event sits at the closing time
    assert found[2][0] == "found"
    assert found[2][-1] == found[1]
    assert closed[4] is True
    assert found[4] is True
