"""`gis-service report monthly` and `gis-service hazards ...` against the demo (read-only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from gis_service.demo.loader import psycopg_conninfo


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "gis_service.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_report_monthly_json_reproduces_the_seed_figure(demo_url: str) -> None:
    r = _cli(demo_url, "report", "monthly", "--month", "2026-11", "--format", "json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["root"]["code"] == "430204"  # the deepest unit holding the whole ledger
    t = report["totals"]
    assert (t["found_total"], t["closed_total"], t["closure_rate"]) == (1056, 986, 93.4)


def test_report_monthly_table_and_docx(demo_url: str, tmp_path: Path) -> None:
    import docx

    r = _cli(demo_url, "report", "monthly", "--month", "2026-10", "--as", "a_planner")
    assert r.returncode == 0, r.stderr
    assert "石峰区 2026-10" in r.stdout
    assert "排名" in r.stdout
    out = tmp_path / "notice.docx"
    r = _cli(
        demo_url, "hazards", "report", "monthly", "--month", "2026-10", "--format", "docx",
        "-o", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = docx.Document(str(out))
    assert doc.tables[0].rows[0].cells[0].text == "排名"
    assert len(doc.tables[0].rows) == 1 + 6  # the six townships of 石峰区


def test_report_refuses_bad_months_and_foreign_areas(demo_url: str) -> None:
    assert _cli(demo_url, "report", "monthly", "--month", "2026-13").returncode == 2
    r = _cli(
        demo_url, "report", "monthly", "--month", "2026-10", "--admin", "430204",
        "--as", "b_surveyor",
    )  # fmt: skip
    assert r.returncode == 1
    assert "not found" in r.stderr


def test_hazards_list_and_show(demo_url: str) -> None:
    r = _cli(demo_url, "hazards", "list", "--status", "closeout_requested", "--json",
             "--as", "a_viewer")  # fmt: skip
    assert r.returncode == 0, r.stderr
    page = json.loads(r.stdout)
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        n = c.execute(
            "SELECT count(*) FROM safety_hazard WHERE status = 'closeout_requested'"
            " AND admin_code LIKE '430204%'"
        ).fetchone()
    assert n is not None
    assert page["total"] == n[0]
    hid = page["items"][0]["id"]
    shown = _cli(demo_url, "hazards", "show", str(hid), "--as", "a_viewer")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["history"][-1]["to_status"] == "closeout_requested"
    assert _cli(demo_url, "hazards", "show", str(hid), "--as", "b_surveyor").returncode == 1


def test_hazards_step_refuses_wrong_role_and_illegal_step(demo_url: str) -> None:
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        row = c.execute(
            "SELECT id, row_version FROM safety_hazard WHERE status = 'closed' ORDER BY id LIMIT 1"
        ).fetchone()
    assert row is not None
    hid, version = row
    r = _cli(demo_url, "hazards", "step", str(hid), "start", "--as", "a_viewer")
    assert r.returncode == 1
    assert "not possible" in r.stderr
    r = _cli(
        demo_url, "hazards", "step", str(hid), "escalate", "--body", '{"supervision_level": 1}'
    )
    assert r.returncode == 2
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        after = c.execute("SELECT row_version FROM safety_hazard WHERE id = %s", (hid,)).fetchone()
    assert after == (version,)
