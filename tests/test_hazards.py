"""The 隐患 ledger on the shared demo (read-only): list, detail, scope, monthly figures, notice.

The monthly figures are recomputed here in Python from the raw ``safety_hazard`` and
``hazard_event`` rows and must equal the report's.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.demo.loader import psycopg_conninfo
from gis_service.hazards import stats
from tests.fixtures import auth

CST = ZoneInfo("Asia/Shanghai")
COUNTY = "430204"


# --------------------------------------------------------------------------- independent maths
def _raw(url: str, root: str) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    with psycopg.connect(psycopg_conninfo(url)) as c:
        units = {
            code: (level, ancestors)
            for code, level, ancestors in c.execute(
                "SELECT code, level, ancestors FROM admin_division"
            )
        }
        hazards = []
        for hid, level, via, admin, sector, deadline, escalated, status in c.execute(
            "SELECT h.id, h.level, h.found_via, h.admin_code, e.sector, h.deadline,"
            " h.escalated, h.status FROM safety_hazard h"
            " LEFT JOIN enterprise e ON e.id = h.enterprise_id"
        ):
            if admin is None or root not in units[admin][1]:
                continue
            chain = units[admin][1]
            county = next(a for a in chain if units[a][0] == "county")
            township = next((a for a in chain if units[a][0] == "township"), None)
            hazards.append(
                {
                    "id": hid,
                    "level": level,
                    "via": via,
                    "sector": sector or "none",
                    "county": county,
                    "township": township,
                    "deadline": deadline,
                    "escalated": escalated,
                    "status": status,
                }
            )
        events: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for hid, to_status, action, at, payload, eid in c.execute(
            "SELECT hazard_id, to_status, action, at, payload, id FROM hazard_event"
        ):
            events[hid].append(
                {"to": to_status, "action": action, "at": at, "payload": payload, "id": eid}
            )
        now = c.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    return hazards, {"now": now, **events}  # type: ignore[dict-item]


def _expected(url: str, root: str, month: str) -> dict[str, Any]:
    """Totals, per county, per township, per level and per sector, from the raw rows."""
    hazards, events = _raw(url, root)
    now = events.pop("now")  # type: ignore[call-overload]
    y, m = map(int, month.split("-"))
    t0 = dt.datetime(y, m, 1, tzinfo=CST)
    t1 = min(dt.datetime(y + m // 12, m % 12 + 1, 1, tzinfo=CST), now)
    end_date = t1.astimezone(CST).date()
    groups: dict[tuple[str, str | None], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(stats.METRICS, 0)
    )
    for h in hazards:
        evs = sorted((e for e in events.get(h["id"], []) if e["at"] < t1), key=lambda e: e["at"])
        found = [e["at"] for e in evs if e["to"] == "found"]
        if not found:
            continue
        found_at = found[0]
        closed = [e["at"] for e in evs if e["to"] == "closed"]
        closed_at = closed[0] if closed else None
        deadlines = [e for e in evs if "deadline" in e["payload"]]
        deadline = (
            dt.date.fromisoformat(
                max(deadlines, key=lambda e: (e["at"], e["id"]))["payload"]["deadline"]
            )
            if deadlines
            else h["deadline"]
        )
        all_esc = [e for e in events.get(h["id"], []) if e["action"] == "escalate"]
        escalated = any(e["at"] < t1 for e in all_esc) if all_esc else h["escalated"]
        open_end = closed_at is None
        overdue = open_end and deadline is not None and deadline < end_date
        f = {
            "found_month": found_at >= t0,
            "closed_month": closed_at is not None and closed_at >= t0,
            "found_total": True,
            "closed_total": closed_at is not None,
            "closed_on_time_total": closed_at is not None
            and deadline is not None
            and closed_at.astimezone(CST).date() <= deadline,
            "open_end": open_end,
            "overdue_open": overdue,
            "major_found_month": found_at >= t0 and h["level"] == "major",
            "major_open": open_end and h["level"] == "major",
            "major_overdue_open": overdue and h["level"] == "major",
            "escalated_open": open_end and bool(escalated),
            "escalated_total": bool(escalated),
            "escalated_closed_on_time": bool(escalated)
            and closed_at is not None
            and deadline is not None
            and closed_at.astimezone(CST).date() <= deadline,
            "enforcement_found_month": found_at >= t0 and h["via"] in ("inspection", "covert"),
        }
        for key in (
            ("total", None),
            ("county", h["county"]),
            ("township", h["township"]),
            ("level", h["level"]),
            ("sector", h["sector"]),
        ):
            for k, v in f.items():
                groups[key][k] += int(v)
    return dict(groups)


def _pick(m: dict[str, Any]) -> dict[str, int]:
    return {k: m[k] for k in stats.METRICS}


def _check_report(report: dict[str, Any], expected: dict[Any, dict[str, int]]) -> None:
    assert _pick(report["totals"]) == expected[("total", None)]
    for county in report["counties"]:
        want = expected.get(("county", county["code"]), dict.fromkeys(stats.METRICS, 0))
        assert _pick(county) == want, county["code"]
        for t in county["townships"]:
            want = expected.get(("township", t["code"]), dict.fromkeys(stats.METRICS, 0))
            assert _pick(t) == want, t["code"]
    for r in report["by_level"]:
        assert _pick(r) == expected[("level", r["level"])]
    for r in report["by_sector"]:
        assert _pick(r) == expected[("sector", r["sector"])]
    assert len(report["by_sector"]) == sum(1 for k in expected if k[0] == "sector")


# --------------------------------------------------------------------------- the seed figure
def test_demo_ledger_reproduces_the_seed_figure(client: TestClient) -> None:
    r = client.get("/reports/monthly/2026-11", headers=auth("a_planner"))
    assert r.status_code == 200, r.text
    t = r.json()["totals"]
    assert (t["found_total"], t["closed_total"], t["closure_rate"]) == (1056, 986, 93.4)
    assert t["open_end"] == 70


@pytest.mark.parametrize("month", ["2026-11", "2026-10", "2026-06", "2025-12"])
def test_monthly_figures_equal_an_independent_recount(
    client: TestClient, demo_url: str, month: str
) -> None:
    r = client.get(f"/reports/monthly/{month}", headers=auth("a_planner"))
    assert r.status_code == 200, r.text
    report = r.json()
    _check_report(report, _expected(demo_url, COUNTY, month))
    assert report["rank_level"] == "township"
    townships = report["counties"][0]["townships"]
    assert {t["code"] for t in report["ranking"]} == {t["code"] for t in townships}


def test_city_report_ranks_counties_and_counts_only_rows_inside(
    client: TestClient, demo_url: str
) -> None:
    r = client.get("/reports/monthly/2026-10?admin=430200", headers=auth("city_surveyor"))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["rank_level"] == "county"
    _check_report(report, _expected(demo_url, "430200", "2026-10"))
    ranked = [x for x in report["ranking"] if x["rank"] is not None]
    assert [x["code"] for x in ranked] == [COUNTY]  # the only county with a ledger
    assert all(x["rank"] is None for x in report["ranking"] if x["code"] != COUNTY)
    # Month-on-month equals the difference of the two months' own reports.
    prev = client.get("/reports/monthly/2026-09?admin=430200", headers=auth("city_surveyor"))
    p = prev.json()["totals"]
    assert report["change"]["found_month"] == report["totals"]["found_month"] - p["found_month"]
    assert report["previous"]["month"] == "2026-09"


def test_ranking_score_and_ties() -> None:
    base = dict.fromkeys(stats.METRICS, 0)
    a = {**base, "code": "1", "found_total": 10, "closed_total": 10, "closed_on_time_total": 10}
    b = {**a, "code": "2"}
    c = {
        **base,
        "code": "3",
        "found_total": 10,
        "closed_total": 5,
        "closed_on_time_total": 4,
        "open_end": 5,
        "overdue_open": 2,
        "major_overdue_open": 1,
    }
    d = {**base, "code": "4"}
    rows = [{**u, "score": stats.score(u)} for u in (c, d, b, a)]
    ranked = stats.rank(rows)
    assert [(r["code"], r["rank"]) for r in ranked] == [("1", 1), ("2", 1), ("3", 3), ("4", None)]
    # 60×0.5 + 25×0.8 + 15×(1 − 2/5) − 5×1 = 30 + 20 + 9 − 5
    assert ranked[2]["score"] == 54.0
    assert ranked[0]["score"] == 100.0


# --------------------------------------------------------------------------- scope
@pytest.mark.parametrize("login", ["sibling_surveyor", "b_surveyor"])
def test_other_counties_neither_see_nor_count_the_ledger(client: TestClient, login: str) -> None:
    r = client.get("/hazards", headers=auth(login))
    assert r.status_code == 200
    assert r.json()["total"] == 0
    one = client.get("/hazards?limit=1", headers=auth("a_viewer")).json()["items"][0]
    assert client.get(f"/hazards/{one['id']}", headers=auth(login)).status_code == 404
    assert (
        client.get(f"/reports/monthly/2026-10?admin={COUNTY}", headers=auth(login)).status_code
        == 404
    )
    own = client.get("/reports/monthly/2026-10", headers=auth(login))
    assert own.status_code == 200
    assert own.json()["totals"]["found_total"] == 0
    fc = client.get("/hazards/map.geojson", headers=auth(login)).json()
    assert fc["features"] == []


def test_city_user_sees_the_whole_ledger(client: TestClient) -> None:
    r = client.get("/hazards?limit=1", headers=auth("city_surveyor"))
    assert r.json()["total"] == 1056


# --------------------------------------------------------------------------- list and detail
def _count(url: str, where: str, params: tuple[Any, ...] = ()) -> int:
    with psycopg.connect(psycopg_conninfo(url)) as c:
        row = c.execute(
            "SELECT count(*) FROM safety_hazard h LEFT JOIN enterprise e ON e.id = h.enterprise_id"
            f" WHERE h.admin_code LIKE '430204%%' AND {where}",
            params,
        ).fetchone()
    assert row is not None
    return int(row[0])


TODAY_SQL = "(now() AT TIME ZONE 'Asia/Shanghai')::date"


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("", "true"),
        ("status=closed", "h.status = 'closed'"),
        ("status=found&status=assigned", "h.status IN ('found', 'assigned')"),
        ("level=major", "h.level = 'major'"),
        ("overdue=true", f"h.status <> 'closed' AND h.deadline < {TODAY_SQL}"),
        ("overdue=false", f"NOT (h.status <> 'closed' AND h.deadline < {TODAY_SQL})"),
        ("escalated=true", "h.escalated"),
        ("sector=hazchem", "e.sector = 'hazchem'"),
        ("sector=none", "h.enterprise_id IS NULL"),
        (
            "found_from=2026-01-01&found_to=2026-03-31",
            "(h.found_at AT TIME ZONE 'Asia/Shanghai')::date BETWEEN '2026-01-01' AND '2026-03-31'",
        ),
        ("level=major&status=closed", "h.level = 'major' AND h.status = 'closed'"),
    ],
)
def test_list_filters_match_sql(client: TestClient, demo_url: str, query: str, where: str) -> None:
    r = client.get(f"/hazards?{query}&limit=5", headers=auth("a_viewer"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == _count(demo_url, where)
    assert len(body["items"]) == min(5, body["total"])


def test_list_by_admin_grid_and_enterprise(client: TestClient, demo_url: str) -> None:
    first = client.get("/hazards?sector=hazchem&limit=1", headers=auth("a_viewer")).json()
    h = first["items"][0]
    town = h["admin_code"][:9]
    for query, where, params in [
        (f"admin={town}", "h.admin_code LIKE %s", (town + "%",)),
        (f"grid={h['grid_code']}", "h.grid_code = %s", (h["grid_code"],)),
        (f"enterprise={h['enterprise_id']}", "h.enterprise_id = %s", (h["enterprise_id"],)),
    ]:
        r = client.get(f"/hazards?{query}", headers=auth("a_viewer"))
        assert r.json()["total"] == _count(demo_url, where, params) > 0, query


def test_paging_is_stable_and_sorted(client: TestClient) -> None:
    pages = [
        client.get(
            f"/hazards?sort=hazard_no&limit=100&offset={o}", headers=auth("a_viewer")
        ).json()["items"]
        for o in range(0, 1100, 100)
    ]
    numbers = [h["hazard_no"] for p in pages for h in p]
    assert len(numbers) == 1056 == len(set(numbers))
    assert numbers == sorted(numbers)
    big = client.get("/hazards?limit=1000000", headers=auth("a_viewer")).json()
    assert big["limit"] == 500
    assert len(big["items"]) == 500


def test_detail_has_the_full_history_and_masks_names_for_viewers(
    client: TestClient, demo_url: str
) -> None:
    h = client.get("/hazards?status=closeout_requested&limit=1", headers=auth("a_planner")).json()
    hid = h["items"][0]["id"]
    r = client.get(f"/hazards/{hid}", headers=auth("a_planner"))
    assert r.status_code == 200
    assert r.headers["ETag"] == f'"{r.json()["row_version"]}"'
    body = r.json()
    assert [e["to_status"] for e in body["history"]] == [
        "found",
        "assigned",
        "rectifying",
        "closeout_requested",
    ]
    assert body["allowed_actions"] == ["close", "reject", "escalate"] or body["escalated"]
    assert body["place"]["county"] == COUNTY
    viewer = client.get(f"/hazards/{hid}", headers=auth("a_viewer")).json()
    assert viewer["allowed_actions"] == []
    if body["responsible_person"]:
        assert viewer["responsible_person"] != body["responsible_person"]


def test_map_layer_holds_the_open_hazards(client: TestClient) -> None:
    r = client.get("/hazards/map.geojson", headers=auth("a_viewer"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    feats = r.json()["features"]
    assert len(feats) == 70
    overdue = [f for f in feats if f["properties"]["overdue"]]
    assert all(f["properties"]["colour"] == "#d7191c" for f in overdue)
    n = client.get("/hazards?overdue=true", headers=auth("a_viewer")).json()["total"]
    assert len(overdue) == n


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/hazards?limit=-1", 422),
        ("/hazards?limit=1.5", 422),
        ("/hazards?sort=-id;drop", 400),
        ("/hazards?foo=1", 400),
        ("/hazards?level=major&level=general", 400),
        ("/hazards?status=bogus", 422),
        ("/hazards?offset=1000000", 400),
        ("/hazards?admin=4302", 422),
        ("/hazards?found_from=yesterday", 422),
        ("/hazards/0", 422),
        ("/hazards/999999999", 404),
        ("/reports/monthly/2026-13", 422),
        ("/reports/monthly/2999-01", 422),
        ("/reports/monthly/26-1", 422),
        ("/reports/monthly/2026-10?admin=440304", 404),
        ("/reports/monthly/2026-10/notice.exe", 422),
    ],
)
def test_bad_input_is_a_4xx_naming_the_problem(client: TestClient, url: str, status: int) -> None:
    r = client.get(url, headers=auth("a_planner"))
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


# --------------------------------------------------------------------------- the notice
def test_notice_docx_holds_the_figures_and_the_ranking(client: TestClient, demo_url: str) -> None:
    import docx

    report = client.get("/reports/monthly/2026-10", headers=auth("a_planner")).json()
    r = client.get("/reports/monthly/2026-10/notice.docx", headers=auth("a_planner"))
    assert r.status_code == 200
    assert "attachment" in r.headers["content-disposition"]
    doc = docx.Document(io.BytesIO(r.content))
    text = "\n".join(p.text for p in doc.paragraphs)
    want = _expected(demo_url, COUNTY, "2026-10")[("total", None)]
    rate = f"{100 * want['closed_total'] / want['found_total']:.1f}%"
    assert "安全生产事故隐患排查治理情况通报（2026年10月）" in text
    assert f"新排查发现事故隐患{want['found_month']}项" in text
    assert f"当月整改销号{want['closed_month']}项" in text
    assert f"累计排查事故隐患{want['found_total']}项，已整改销号{want['closed_total']}项" in text
    assert f"整改率{rate}" in text
    assert f"逾期未整改{want['overdue_open']}项" in text
    ranking = doc.tables[0]
    header = [c.text for c in ranking.rows[0].cells]
    assert header[:3] == ["排名", "单位", "本月发现"]
    body = [[c.text for c in row.cells] for row in ranking.rows[1:]]
    assert len(body) == len(report["ranking"])
    for row, want_row in zip(body, report["ranking"], strict=True):
        assert row[1] == want_row["name"]
        assert row[0] == (str(want_row["rank"]) if want_row["rank"] else "—")
        assert row[2] == str(want_row["found_month"])
    assert [int(r[0]) for r in body if r[0] != "—"] == sorted(
        int(r[0]) for r in body if r[0] != "—"
    )
    assert "逾期未整改重大事故隐患清单" in "\n".join(p.text for p in doc.paragraphs)


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_notice_text_formats_agree_with_the_report(client: TestClient, fmt: str) -> None:
    report = client.get("/reports/monthly/2026-11", headers=auth("a_planner")).json()
    r = client.get(f"/reports/monthly/2026-11/notice.{fmt}", headers=auth("a_planner"))
    assert r.status_code == 200
    text = r.text
    assert "累计排查事故隐患1056项，已整改销号986项" in text
    assert "整改率93.4%" in text
    t = report["totals"]
    assert t["escalated_total"] > 0
    assert (
        f"挂牌督办隐患累计{t['escalated_total']}项，按期销号{t['escalated_closed_on_time']}项"
        in text
    )
    for h in report["overdue_major"]:
        assert h["hazard_no"] in text
    for u in report["ranking"]:
        assert u["name"] in text


def test_notice_pdf_holds_the_ranking_table(client: TestClient) -> None:
    import pypdf

    report = client.get("/reports/monthly/2026-10", headers=auth("a_planner")).json()
    r = client.get("/reports/monthly/2026-10/notice.pdf", headers=auth("a_planner"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    pdf = pypdf.PdfReader(io.BytesIO(r.content))
    text = "".join(page.extract_text() for page in pdf.pages).replace("\n", "")
    assert "安全生产事故隐患排查治理情况通报（2026年10月）" in text
    assert "截至2026年10月底" in text
    assert "表1 各乡镇（街道）隐患排查治理情况排名" in text
    for u in report["ranking"]:
        assert f"{u['rank']}{u['name']}{u['found_month']}{u['closed_month']}" in text


# --------------------------------------------------------------------------- 台账 export
def test_ledger_csv_and_xlsx_exports_match_the_list(client: TestClient) -> None:
    import csv

    import openpyxl

    q = "status=rectifying&status=assigned"
    listed = client.get(f"/hazards?{q}&limit=500", headers=auth("a_viewer")).json()
    numbers = sorted(h["hazard_no"] for h in listed["items"])
    r = client.get(f"/hazards/export.csv?{q}", headers=auth("a_viewer"))
    assert r.status_code == 200
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == [f"石峰区安全生产事故隐患排查治理台账（共{listed['total']}项）"]
    assert rows[1][:3] == ["序号", "隐患编号", "隐患名称"]
    assert [row[1] for row in rows[2:]] == numbers
    assert {row[14] for row in rows[2:]} == {"已交办", "整改中"}
    overdue = {h["hazard_no"] for h in listed["items"] if h["overdue"]}
    assert {row[1] for row in rows[2:] if row[15].startswith("是")} == overdue
    x = client.get(f"/hazards/export.xlsx?{q}", headers=auth("a_viewer"))
    assert x.status_code == 200
    ws = openpyxl.load_workbook(io.BytesIO(x.content)).active
    assert ws is not None
    values = list(ws.iter_rows(values_only=True))
    assert values[0][0] == rows[0][0]
    assert [v[1] for v in values[2:]] == numbers
    assert "A1:R1" in {str(m) for m in ws.merged_cells.ranges}
    other = client.get(f"/hazards/export.csv?{q}", headers=auth("b_surveyor"))
    assert len(list(csv.reader(io.StringIO(other.content.decode("utf-8-sig"))))) == 2
