"""The 单四制 workflow on a private copy of the demo: every step by every role, illegal steps,
If-Match, 20 concurrent steps, atomicity of edit + event, append-only history, frozen months,
county ranking with two counties, the notice naming overdue major hazards."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.api.app import create_app
from gis_service.db import migrate
from gis_service.db.engine import make_async_engine
from gis_service.demo import loader
from gis_service.demo.loader import psycopg_conninfo
from gis_service.settings import Settings
from tests.fixtures import add_foreign_county, auth
from tests.test_hazards import _check_report, _expected


def _bureau_today() -> dt.date:
    """Today in Beijing time, the bureau's calendar (from 16:00 UTC the dates differ)."""
    return dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()


STATES = ("found", "assigned", "rectifying", "closeout_requested", "closed")
#: Written out here (not read from the code): who may take each step.
WHO = {
    "assign": {"admin", "planner"},
    "start": {"admin", "surveyor", "grid_worker"},
    "request_closeout": {"admin", "surveyor", "grid_worker"},
    "close": {"admin", "planner"},
    "reject": {"admin", "planner"},
    "escalate": {"admin", "planner", "commander"},
}
FROM = {
    "assign": "found",
    "start": "assigned",
    "request_closeout": "rectifying",
    "close": "closeout_requested",
    "reject": "closeout_requested",
    "escalate": "rectifying",
}
TO = {
    "assign": "assigned",
    "start": "rectifying",
    "request_closeout": "closeout_requested",
    "close": "closed",
    "reject": "rectifying",
    "escalate": "rectifying",
}
LOGIN = {
    "admin": "a_admin",
    "planner": "a_planner",
    "surveyor": "a_surveyor",
    "commander": "a_commander",
    "grid_worker": "a_gridworker",
    "viewer": "a_viewer",
}
EVIDENCE = [{"name": "after.jpg", "sha256": "a" * 64}]


def _deadline(days: int = 30) -> str:
    return (_bureau_today() + dt.timedelta(days=days)).isoformat()


def body_for(action: str) -> dict[str, Any]:
    """A valid body for each step (for a general hazard)."""
    return {
        "assign": {
            "responsible_org": "测试化工有限公司",
            "responsible_person": "张三",
            "deadline": _deadline(),
            "measures": "更换泄压阀，完善巡检记录",
        },
        "start": {"note": "已开始整改"},
        "request_closeout": {"evidence": EVIDENCE, "note": "已更换并验收"},
        "close": {"opinion": "现场复核合格，同意销号"},
        "reject": {"opinion": "整改不到位，退回"},
        "escalate": {"supervision_level": "county"},
    }[action]


@pytest.fixture(scope="module")
def ledger_url(make_database: Any, demo_city: Any) -> str:
    url = make_database("hz")
    migrate.upgrade(url)
    loader.load(url, demo_city)
    add_foreign_county(url)
    return url


@pytest.fixture(scope="module")
def api(ledger_url: str, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, database_url=ledger_url)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _sql(url: str, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(psycopg_conninfo(url)) as c:
        cur = c.execute(query, params)
        rows = cur.fetchall() if cur.description else []
        c.commit()
    return rows


_seq = itertools.count(1)


def make_hazard(
    url: str,
    status: str,
    *,
    level: str = "general",
    escalated: bool = False,
    deadline: dt.date | None = None,
    county: str = "430204",
    found_days_ago: int = 40,
) -> int:
    """A hazard in ``status`` with a synthetic history (as an imported ledger would have)."""
    n = next(_seq)
    path = STATES[: STATES.index(status) + 1]
    deadline = deadline or _bureau_today() + dt.timedelta(days=20)
    rows = _sql(
        url,
        """INSERT INTO safety_hazard (hazard_no, title, level, found_via, status, escalated,
                  deadline, found_at, closed_at, geom, responsible_org, source)
           SELECT %s, %s, %s, 'inspection', %s, %s, %s, now() - %s * interval '1 day',
                  CASE WHEN %s = 'closed' THEN now() - interval '1 day' END,
                  ST_PointOnSurface(v.boundary), '测试单位', 'test'
           FROM admin_division v WHERE v.level = 'village' AND %s = ANY(v.ancestors)
           ORDER BY v.code LIMIT 1
           RETURNING id""",
        (
            f"T{county}-{n:05d}",
            f"测试隐患{n}",
            level,
            status,
            escalated,
            deadline,
            found_days_ago,
            status,
            county,
        ),
    )
    hid = int(rows[0][0])
    for i, st in enumerate(path):
        _sql(
            url,
            "INSERT INTO hazard_event (hazard_id, from_status, to_status, actor, at, source)"
            " VALUES (%s, %s, %s, 'importer', now() - (%s - %s) * interval '1 day', 'test')",
            (hid, path[i - 1] if i else None, st, found_days_ago, i),
        )
    return hid


def _etag(api: TestClient, hid: int, login: str = "a_admin") -> str:
    r = api.get(f"/hazards/{hid}", headers=auth(login))
    assert r.status_code == 200, r.text
    return r.headers["ETag"]


def step(api: TestClient, hid: int, action: str, login: str, body: Any = None) -> Any:
    return api.post(
        f"/hazards/{hid}/{action}",
        json=body_for(action) if body is None else body,
        headers={**auth(login), "If-Match": _etag(api, hid)},
    )


def _events(url: str, hid: int) -> list[tuple[Any, ...]]:
    return _sql(
        url,
        "SELECT action, from_status, to_status, actor, actor_role, at FROM hazard_event"
        " WHERE hazard_id = %s ORDER BY at, id",
        (hid,),
    )


def _a_point(url: str) -> tuple[float, float]:
    row = _sql(
        url,
        "SELECT ST_X(geom), ST_Y(geom) FROM enterprise WHERE admin_code LIKE '430204%%'"
        " ORDER BY id LIMIT 1",
    )[0]
    return float(row[0]), float(row[1])


# --------------------------------------------------------------------------- a full cycle
def test_full_cycle_found_assigned_rectifying_closeout_closed(
    api: TestClient, ledger_url: str
) -> None:
    lon, lat = _a_point(ledger_url)
    r = api.post(
        "/hazards",
        json={
            "title": "配电箱未接地",
            "level": "general",
            "found_via": "grid_patrol",
            "lon": lon,
            "lat": lat,
            "photos": [{"name": "before.jpg", "sha256": "b" * 64}],
        },
        headers=auth("a_gridworker"),
    )
    assert r.status_code == 201, r.text
    hid = r.json()["id"]
    assert r.headers["Location"] == f"/hazards/{hid}"
    month = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert r.json()["hazard_no"].startswith(f"430204-{month:%Y%m}-")
    assert r.json()["status"] == "found"
    assert step(api, hid, "assign", "a_planner").status_code == 200
    assert step(api, hid, "start", "a_gridworker").status_code == 200
    assert step(api, hid, "request_closeout", "a_gridworker").status_code == 200
    # The rectifier may not close it: a grid worker lacks the role anyway, an admin who
    # rectified is refused by the four-eyes rule (next test); the planner reviews.
    assert step(api, hid, "close", "a_gridworker").status_code == 403
    done = step(api, hid, "close", "a_planner")
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "closed"
    assert body["closed_at"]
    assert body["overdue"] is False
    assert body["allowed_actions"] == []
    ev = _events(ledger_url, hid)
    assert [(e[0], e[1], e[2], e[3], e[4]) for e in ev] == [
        ("create", None, "found", "a_gridworker", "grid_worker"),
        ("assign", "found", "assigned", "a_planner", "planner"),
        ("start", "assigned", "rectifying", "a_gridworker", "grid_worker"),
        ("request_closeout", "rectifying", "closeout_requested", "a_gridworker", "grid_worker"),
        ("close", "closeout_requested", "closed", "a_planner", "planner"),
    ]
    closed_at = _sql(ledger_url, "SELECT closed_at FROM safety_hazard WHERE id = %s", (hid,))
    assert ev[-1][5] == closed_at[0][0]  # one transaction, one database clock
    history = api.get(f"/hazards/{hid}", headers=auth("a_viewer")).json()["history"]
    assert [h["action"] for h in history] == [e[0] for e in ev]
    assert history[1]["payload"]["deadline"] == _deadline()


def test_reviewer_must_not_be_the_rectifier_and_reject_goes_back(
    api: TestClient, ledger_url: str
) -> None:
    hid = make_hazard(ledger_url, "assigned")
    assert step(api, hid, "start", "a_admin").status_code == 200
    assert step(api, hid, "request_closeout", "a_admin").status_code == 200
    r = step(api, hid, "close", "a_admin")
    assert r.status_code == 403
    assert r.json()["code"] == "reviewer_is_rectifier"
    r = step(api, hid, "reject", "a_planner")
    assert r.status_code == 200
    assert r.json()["status"] == "rectifying"
    assert step(api, hid, "request_closeout", "a_gridworker").status_code == 200
    assert step(api, hid, "close", "a_planner").json()["status"] == "closed"
    actions = [e[0] for e in _events(ledger_url, hid)]
    assert actions[-5:] == ["start", "request_closeout", "reject", "request_closeout", "close"]


# --------------------------------------------------------------------------- role matrix
@pytest.mark.parametrize(("action", "role"), list(itertools.product(WHO, LOGIN)), ids=str)
def test_every_step_by_every_role(api: TestClient, ledger_url: str, action: str, role: str) -> None:
    hid = make_hazard(ledger_url, FROM[action])
    before = _events(ledger_url, hid)
    r = step(api, hid, action, LOGIN[role])
    if role in WHO[action]:
        assert r.status_code == 200, r.text
        assert r.json()["status"] == TO[action]
        after = _events(ledger_url, hid)
        assert len(after) == len(before) + 1
        assert after[-1][:5] == (action, FROM[action], TO[action], LOGIN[role], role)
    else:
        assert r.status_code == 403, r.text
        assert _events(ledger_url, hid) == before


def test_viewers_and_commanders_register_or_not(api: TestClient, ledger_url: str) -> None:
    lon, lat = _a_point(ledger_url)
    new = {"title": "消防通道堵塞", "level": "general", "found_via": "public_report"}
    assert (
        api.post(
            "/hazards", json={**new, "lon": lon, "lat": lat}, headers=auth("a_viewer")
        ).status_code
        == 403
    )
    assert (
        api.post(
            "/hazards", json={**new, "lon": lon, "lat": lat}, headers=auth("a_commander")
        ).status_code
        == 201
    )


# --------------------------------------------------------------------------- illegal steps
ILLEGAL = [
    (status, action)
    for status in STATES
    for action in WHO
    if not (FROM[action] == status or (action == "escalate" and status != "closed"))
    and not (action in ("close", "reject") and status == "closeout_requested")
]


@pytest.mark.parametrize(("status", "action"), ILLEGAL)
def test_illegal_steps_are_409_listing_the_possible_ones(
    api: TestClient, ledger_url: str, status: str, action: str
) -> None:
    hid = make_hazard(ledger_url, status)
    before = _sql(ledger_url, "SELECT status, row_version FROM safety_hazard WHERE id = %s", (hid,))
    r = step(api, hid, action, "a_admin")
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["code"] == "illegal_transition"
    legal = [a for a in WHO if FROM[a] == status or (a == "escalate" and status != "closed")]
    if status == "closeout_requested":
        legal = ["close", "reject", "escalate"]
    assert sorted(problem["allowed_actions"]) == sorted(legal)
    assert (
        _sql(ledger_url, "SELECT status, row_version FROM safety_hazard WHERE id = %s", (hid,))
        == before
    )


def test_escalating_twice_is_409(api: TestClient, ledger_url: str) -> None:
    hid = make_hazard(ledger_url, "rectifying", escalated=True)
    r = step(api, hid, "escalate", "a_planner")
    assert r.status_code == 409
    assert "escalate" not in r.json()["allowed_actions"]


# --------------------------------------------------------------------------- step rules
@pytest.mark.parametrize(
    ("action", "status", "level", "body", "field"),
    [
        (
            "assign",
            "found",
            "general",
            {**body_for("assign"), "deadline": "2020-01-01"},
            "deadline",
        ),
        (
            "assign",
            "found",
            "general",
            {**body_for("assign"), "deadline": "2099-01-01"},
            "deadline",
        ),
        ("assign", "found", "major", body_for("assign"), "five_in_place"),
        (
            "assign",
            "found",
            "major",
            {
                **body_for("assign"),
                "five_in_place": {
                    "measures": True,
                    "funds": False,
                    "deadline": True,
                    "person": True,
                    "plan": True,
                },
            },
            "five_in_place",
        ),
        ("request_closeout", "rectifying", "general", {"note": "done", "evidence": []}, "evidence"),
        ("request_closeout", "rectifying", "general", {"note": "done"}, "evidence"),
        ("close", "closeout_requested", "general", {"opinion": ""}, "opinion"),
        ("escalate", "found", "general", {"supervision_level": "village"}, "supervision_level"),
        ("start", "assigned", "general", {"note": "x", "status": "closed"}, "status"),
    ],
)
def test_step_rules_are_422_naming_the_field(
    api: TestClient,
    ledger_url: str,
    action: str,
    status: str,
    level: str,
    body: dict[str, Any],
    field: str,
) -> None:
    hid = make_hazard(ledger_url, status, level=level)
    r = step(api, hid, action, "a_admin", body)
    assert r.status_code == 422, r.text
    assert field in r.text
    assert _events(ledger_url, hid)[-1][2] == status


def test_major_hazard_with_five_in_place_is_assigned(api: TestClient, ledger_url: str) -> None:
    hid = make_hazard(ledger_url, "found", level="major")
    five = dict.fromkeys(("measures", "funds", "deadline", "person", "plan"), True)
    r = step(api, hid, "assign", "a_planner", {**body_for("assign"), "five_in_place": five})
    assert r.status_code == 200, r.text
    assert r.json()["five_in_place"] == five


@pytest.mark.parametrize(
    ("body", "login", "status"),
    [
        ({"title": "x", "level": "major", "found_via": "inspection"}, "a_planner", 422),
        (
            {
                "title": "x",
                "level": "general",
                "found_via": "inspection",
                "lon": 114.05,
                "lat": 22.54,
            },
            "a_planner",
            422,
        ),
        (
            {"title": "x", "level": "general", "found_via": "inspection", "lon": 113.1},
            "a_planner",
            422,
        ),
        (
            {"title": "x", "level": "general", "found_via": "gossip", "enterprise_id": 1},
            "a_planner",
            422,
        ),
        (
            {
                "title": "x",
                "level": "general",
                "found_via": "inspection",
                "enterprise_id": 1,
                "id": 5,
            },
            "a_planner",
            422,
        ),
        (
            {
                "title": "x",
                "level": "general",
                "found_via": "inspection",
                "lon": float("nan"),
                "lat": 27.8,
            },
            "a_planner",
            422,
        ),
    ],
)
def test_create_refuses_bad_input(
    api: TestClient, body: dict[str, Any], login: str, status: int
) -> None:
    r = api.post(
        "/hazards",
        content=json.dumps(body),  # NaN goes out as the bare token NaN
        headers={**auth(login), "Content-Type": "application/json"},
    )
    assert r.status_code == status, r.text


def test_create_with_another_countys_enterprise_is_404(api: TestClient, ledger_url: str) -> None:
    eid = _sql(ledger_url, "SELECT id FROM enterprise WHERE uscc = '91440300TEST00001B'")[0][0]
    r = api.post(
        "/hazards",
        json={"title": "x", "level": "general", "found_via": "inspection", "enterprise_id": eid},
        headers=auth("a_planner"),
    )
    assert r.status_code == 404


def test_create_at_an_enterprise_uses_its_point_and_numbers_in_sequence(
    api: TestClient, ledger_url: str
) -> None:
    eid = _sql(ledger_url, "SELECT id FROM enterprise WHERE admin_code LIKE '430204%%' LIMIT 1")[0][
        0
    ]
    new = {
        "title": "涉爆粉尘除尘系统未设锁气卸灰装置",
        "level": "major",
        "found_via": "inspection",
        "enterprise_id": eid,
        "legal_basis": "工贸企业重大事故隐患判定标准 第十一条(二)",
    }
    a = api.post("/hazards", json=new, headers=auth("a_surveyor")).json()
    b = api.post("/hazards", json=new, headers=auth("a_surveyor")).json()
    assert a["enterprise_id"] == eid
    assert a["enterprise_name"]
    pa, pb = a["hazard_no"].rsplit("-", 1), b["hazard_no"].rsplit("-", 1)
    assert pa[0] == pb[0]
    assert int(pb[1]) == int(pa[1]) + 1


# --------------------------------------------------------------------------- If-Match, scope
def test_if_match_missing_stale_garbage(api: TestClient, ledger_url: str) -> None:
    hid = make_hazard(ledger_url, "assigned")
    url = f"/hazards/{hid}/start"
    assert api.post(url, json={}, headers=auth("a_admin")).status_code == 428
    tag = _etag(api, hid)
    stale = f'"{int(tag.strip(chr(34))) - 1}"'
    assert api.post(url, json={}, headers={**auth("a_admin"), "If-Match": stale}).status_code == 412
    assert api.post(url, json={}, headers={**auth("a_admin"), "If-Match": "x"}).status_code == 400
    r = api.post(url, json={}, headers={**auth("a_admin"), "If-Match": tag})
    assert r.status_code == 200
    assert r.headers["ETag"] != tag
    assert api.post(url, json={}, headers={**auth("a_admin"), "If-Match": tag}).status_code == 412


@pytest.mark.parametrize("login", ["sibling_surveyor", "b_admin"])
def test_another_county_cannot_touch_a_hazard(api: TestClient, ledger_url: str, login: str) -> None:
    hid = make_hazard(ledger_url, "assigned")
    tag = _etag(api, hid)
    r = api.post(f"/hazards/{hid}/start", json={}, headers={**auth(login), "If-Match": tag})
    assert r.status_code == 404
    assert _etag(api, hid) == tag


def test_twenty_concurrent_steps_have_one_winner(ledger_url: str, settings: Settings) -> None:
    hid = make_hazard(ledger_url, "rectifying")
    app = create_app(settings, database_url=ledger_url)
    version = _sql(ledger_url, "SELECT row_version FROM safety_hazard WHERE id = %s", (hid,))[0][0]
    n_before = len(_events(ledger_url, hid))

    async def race(n: int) -> list[Any]:
        app.state.engine = make_async_engine(ledger_url, settings.db)
        try:
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as ac:
                return await asyncio.gather(
                    *(
                        ac.post(
                            f"/hazards/{hid}/{'escalate' if i % 2 else 'request_closeout'}",
                            json=body_for("escalate" if i % 2 else "request_closeout"),
                            headers={**auth("a_admin"), "If-Match": f'"{version}"'},
                        )
                        for i in range(n)
                    )
                )
        finally:
            await app.state.engine.dispose()

    statuses = sorted(r.status_code for r in asyncio.run(race(20)))
    assert statuses.count(200) == 1, statuses
    assert statuses.count(412) == 19, statuses
    assert len(_events(ledger_url, hid)) == n_before + 1
    final = _sql(ledger_url, "SELECT row_version FROM safety_hazard WHERE id = %s", (hid,))[0][0]
    assert final == version + 1


# --------------------------------------------------------------------------- ledger integrity
def test_edit_and_event_commit_together_or_not_at_all(api: TestClient, ledger_url: str) -> None:
    hid = make_hazard(ledger_url, "assigned")
    before = _sql(ledger_url, "SELECT status, row_version FROM safety_hazard WHERE id = %s", (hid,))
    _sql(
        ledger_url,
        """CREATE FUNCTION test_fail_event() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'simulated crash' USING ERRCODE = 'check_violation'; END $$;
           CREATE TRIGGER test_fail BEFORE INSERT ON hazard_event
           FOR EACH ROW EXECUTE FUNCTION test_fail_event()""",
    )
    try:
        r = step(api, hid, "start", "a_admin")
        assert r.status_code >= 400
    finally:
        _sql(ledger_url, "DROP TRIGGER test_fail ON hazard_event; DROP FUNCTION test_fail_event()")
    after = _sql(ledger_url, "SELECT status, row_version FROM safety_hazard WHERE id = %s", (hid,))
    assert after == before
    assert step(api, hid, "start", "a_admin").status_code == 200


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE hazard_event SET note = 'rewritten' WHERE id = (SELECT max(id) FROM hazard_event)",
        "DELETE FROM hazard_event WHERE id = (SELECT max(id) FROM hazard_event)",
        "TRUNCATE hazard_event CASCADE",
        "DELETE FROM safety_hazard WHERE id = (SELECT max(hazard_id) FROM hazard_event)",
    ],
)
def test_the_history_is_append_only(ledger_url: str, statement: str) -> None:
    with psycopg.connect(psycopg_conninfo(ledger_url)) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(statement)
        c.rollback()


# --------------------------------------------------------------------------- reports
def test_two_counties_are_ranked_and_recounted(api: TestClient, ledger_url: str) -> None:
    for status in ("closed", "closed", "rectifying"):
        make_hazard(ledger_url, status, county="430202", found_days_ago=5)
    month = _sql(ledger_url, "SELECT to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')")[0][0]
    r = api.get(f"/reports/monthly/{month}?admin=430200", headers=auth("city_surveyor"))
    assert r.status_code == 200
    report = r.json()
    _check_report(report, _expected(ledger_url, "430200", month))
    ranked = [x for x in report["ranking"] if x["rank"] is not None]
    assert {x["code"] for x in ranked} == {"430202", "430204"}
    scores = [x["score"] for x in ranked]
    assert scores == sorted(scores, reverse=True)
    # The sibling county's user sees only its own three.
    own = api.get(f"/reports/monthly/{month}", headers=auth("sibling_surveyor")).json()
    assert own["totals"]["found_total"] == 3
    assert own["totals"]["closed_total"] == 2
    assert api.get("/hazards", headers=auth("sibling_surveyor")).json()["total"] == 3


def test_notice_names_overdue_major_hazards(api: TestClient, ledger_url: str) -> None:
    late = _bureau_today() - dt.timedelta(days=9)
    hid = make_hazard(ledger_url, "rectifying", level="major", deadline=late, escalated=True)
    no, title = _sql(
        ledger_url, "SELECT hazard_no, title FROM safety_hazard WHERE id = %s", (hid,)
    )[0]
    month = _sql(ledger_url, "SELECT to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')")[0][0]
    report = api.get(f"/reports/monthly/{month}", headers=auth("a_planner")).json()
    listed = {h["hazard_no"]: h for h in report["overdue_major"]}
    assert listed[no]["days_overdue"] == 9
    assert listed[no]["escalated"]
    html = api.get(f"/reports/monthly/{month}/notice.html", headers=auth("a_planner")).text
    assert no in html
    assert title in html
    assert "逾期未整改重大事故隐患" in html
    assert f"逾期{report['totals']['major_overdue_open']}项" in html


def test_a_published_month_is_frozen(api: TestClient, ledger_url: str) -> None:
    before = api.get("/reports/monthly/2026-09", headers=auth("a_planner")).json()
    assert api.post("/reports/monthly/2026-09/publish", headers=auth("a_viewer")).status_code == 403
    r = api.post("/reports/monthly/2026-09/publish", headers=auth("a_planner"))
    assert r.status_code == 200, r.text
    assert r.json()["published"] is True
    assert (
        api.post("/reports/monthly/2026-09/publish", headers=auth("a_planner")).status_code == 409
    )
    month = _sql(ledger_url, "SELECT to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')")[0][0]
    assert (
        api.post(f"/reports/monthly/{month}/publish", headers=auth("a_planner")).status_code == 422
    )
    # A later correction to an old hazard (re-graded as major) …
    hid = _sql(
        ledger_url,
        "SELECT id FROM safety_hazard WHERE level = 'general' AND admin_code LIKE '430204%%'"
        " AND found_at < '2026-08-01' ORDER BY id LIMIT 1",
    )[0][0]
    _sql(ledger_url, "UPDATE safety_hazard SET level = 'major' WHERE id = %s", (hid,))
    try:
        frozen = api.get("/reports/monthly/2026-09", headers=auth("a_planner")).json()
        live = api.get(
            "/reports/monthly/2026-09?admin=430200", headers=auth("city_surveyor")
        ).json()
    finally:
        _sql(ledger_url, "UPDATE safety_hazard SET level = 'general' WHERE id = %s", (hid,))
    # … leaves the published month as it was, while a live recount moves.
    assert frozen["by_level"] == before["by_level"]
    assert frozen["totals"] == before["totals"]
    assert frozen["ranking"] == before["ranking"]
    major = {r["level"]: r["found_total"] for r in live["by_level"]}["major"]
    assert major == {r["level"]: r["found_total"] for r in before["by_level"]}["major"] + 1
    with (
        psycopg.connect(psycopg_conninfo(ledger_url)) as c,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        c.execute("UPDATE hazard_monthly_report SET body = '{}'")


def test_export_defuses_formula_like_cells(api: TestClient, ledger_url: str) -> None:
    import csv
    import io

    lon, lat = _a_point(ledger_url)
    evil = '=HYPERLINK("http://x","点我")'
    r = api.post(
        "/hazards",
        json={
            "title": evil,
            "level": "general",
            "found_via": "grid_patrol",
            "lon": lon,
            "lat": lat,
        },
        headers=auth("a_gridworker"),
    )
    assert r.status_code == 201
    out = api.get("/hazards/export.csv?status=found", headers=auth("a_planner"))
    rows = list(csv.reader(io.StringIO(out.content.decode("utf-8-sig"))))
    assert ["'" + evil] == [row[2] for row in rows[2:] if evil in row[2]]


def test_imported_rows_get_a_synthetic_history_and_count(api: TestClient, ledger_url: str) -> None:
    import os
    import subprocess
    import sys

    month = _sql(ledger_url, "SELECT to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')")[0][0]
    before = api.get(f"/reports/monthly/{month}", headers=auth("a_planner")).json()["totals"]
    rows = _sql(
        ledger_url,
        """INSERT INTO safety_hazard (hazard_no, title, level, status, deadline, found_at,
                  closed_at, admin_code, source)
           SELECT 'IMP-' || n, '导入隐患' || n, 'general', st, current_date + 5,
                  now() - interval '10 days',
                  CASE WHEN st = 'closed' THEN now() - interval '2 days' END,
                  (SELECT code FROM admin_division WHERE level = 'village'
                   AND '430204' = ANY(ancestors) ORDER BY code LIMIT 1), 'import:test'
           FROM (VALUES (1, 'closed'), (2, 'rectifying')) v(n, st)
           RETURNING id, status, found_at, closed_at""",
    )
    env = {**os.environ, "DATABASE_URL": ledger_url}
    denied = subprocess.run(
        [sys.executable, "-m", "gis_service.cli", "hazards", "backfill", "--as", "a_viewer"],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert denied.returncode == 1
    r = subprocess.run(
        [sys.executable, "-m", "gis_service.cli", "hazards", "backfill", "--as", "a_planner"],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "2 hazards" in r.stdout
    for hid, status, found_at, closed_at in rows:
        ev = _events(ledger_url, hid)
        assert [e[2] for e in ev] == list(STATES[: STATES.index(status) + 1])
        assert {e[0] for e in ev} == {"import"}
        assert ev[0][5] == found_at
        assert ev[-1][5] == (closed_at or found_at)
    after = api.get(f"/reports/monthly/{month}", headers=auth("a_planner")).json()["totals"]
    assert after["found_total"] == before["found_total"] + 2
    assert after["closed_total"] == before["closed_total"] + 1


def test_every_step_is_audited_with_its_actor(api: TestClient, ledger_url: str) -> None:
    hid = make_hazard(ledger_url, "assigned")
    (last,) = _sql(ledger_url, "SELECT coalesce(max(id), 0) FROM audit_log")[0]
    assert step(api, hid, "start", "a_surveyor").status_code == 200
    rows = _sql(
        ledger_url,
        "SELECT table_name, action, actor, after ->> 'status', after ->> 'to_status'"
        " FROM audit_log WHERE id > %s AND (row_id = %s OR after ->> 'hazard_id' = %s::text)"
        " ORDER BY id",
        (last, hid, hid),
    )
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("safety_hazard", "UPDATE", "a_surveyor"),
        ("hazard_event", "INSERT", "a_surveyor"),
    ]
    assert rows[0][3] == "rectifying"
    assert rows[1][4] == "rectifying"


# --------------------------------------------------------------------------- photos and evidence
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(scope="module")
def files_api(ledger_url: str, settings: Settings, tmp_path_factory: Any) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("gisdata")
    mine = settings.model_copy(update={"db": settings.db.model_copy(update={"data_dir": data_dir})})
    with TestClient(create_app(mine, database_url=ledger_url), raise_server_exceptions=False) as c:
        yield c


def _upload(api: TestClient, login: str, data: bytes, name: str = "现场.png") -> Any:
    return api.post("/hazard-files", files={"file": (name, data)}, headers=auth(login))


def test_upload_accepts_images_and_pdfs_only(files_api: TestClient) -> None:
    r = _upload(files_api, "a_gridworker", PNG)
    assert r.status_code == 201, r.text
    ref = r.json()
    assert ref["media_type"] == "image/png"
    assert ref["url"] == f"/hazard-files/{ref['sha256']}"
    assert _upload(files_api, "a_gridworker", b"%PDF-1.7 ...", "a.pdf").status_code == 201
    assert _upload(files_api, "a_gridworker", b"MZ\x90\x00", "photo.png").status_code == 422
    assert _upload(files_api, "a_gridworker", b"", "empty.jpg").status_code == 422
    assert _upload(files_api, "a_viewer", PNG).status_code == 403
    big = b"\xff\xd8\xff" + b"\x00" * (10 * 1024 * 1024)
    assert _upload(files_api, "a_gridworker", big, "big.jpg").status_code == 413


def test_files_are_served_only_through_a_visible_hazard(
    files_api: TestClient, ledger_url: str
) -> None:
    photo = _upload(files_api, "a_gridworker", PNG + b"photo").json()
    proof = _upload(files_api, "a_gridworker", PNG + b"proof").json()
    url = f"/hazard-files/{photo['sha256']}"
    assert files_api.get(url, headers=auth("a_viewer")).status_code == 404  # not referenced yet
    lon, lat = _a_point(ledger_url)
    created = files_api.post(
        "/hazards",
        json={"title": "楼道堆放杂物", "level": "general", "found_via": "grid_patrol",
              "lon": lon, "lat": lat, "photos": [photo]},
        headers=auth("a_gridworker"),
    )  # fmt: skip
    assert created.status_code == 201, created.text
    got = files_api.get(url, headers=auth("a_viewer"))
    assert got.status_code == 200
    assert got.content == PNG + b"photo"
    assert got.headers["content-type"] == "image/png"
    assert files_api.get(url, headers=auth("b_surveyor")).status_code == 404
    hid = created.json()["id"]
    for action, body in (
        ("assign", body_for("assign")),
        ("start", {}),
        ("request_closeout", {"evidence": [proof], "note": "已清理"}),
    ):
        assert step(files_api, hid, action, "a_admin", body).status_code == 200
    assert files_api.get(proof["url"], headers=auth("a_viewer")).status_code == 200
    assert files_api.get(proof["url"], headers=auth("sibling_surveyor")).status_code == 404
    assert files_api.get("/hazard-files/" + "0" * 64, headers=auth("a_admin")).status_code == 404
    assert files_api.get("/hazard-files/../etc", headers=auth("a_admin")).status_code == 404


def test_only_the_bulk_maintenance_path_may_remove_demo_history(ledger_url: str) -> None:
    """``demo load`` replaces the demo under ``gis.bulk``; even then events are never edited."""
    with psycopg.connect(psycopg_conninfo(ledger_url)) as c:
        c.execute("SET LOCAL gis.bulk = 'on'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(
                "UPDATE hazard_event SET note = 'x' WHERE id = (SELECT min(id) FROM hazard_event)"
            )
        c.rollback()
        c.execute("SET LOCAL gis.bulk = 'on'")
        n = c.execute("DELETE FROM safety_hazard WHERE source = 'demo'").rowcount
        assert n == 1056
        left = c.execute(
            "SELECT count(*) FROM hazard_event e WHERE NOT EXISTS"
            " (SELECT 1 FROM safety_hazard h WHERE h.id = e.hazard_id)"
        ).fetchone()
        assert left == (0,)
        c.rollback()


def test_a_township_user_sees_and_counts_only_their_township(
    api: TestClient, ledger_url: str
) -> None:
    from gis_service.domain.users import hash_token

    town = "430204001"
    _sql(
        ledger_url,
        "INSERT INTO app_user (login, role, scope_code, token_hash, source)"
        " VALUES ('town_planner', 'planner', %s, %s, 'test') ON CONFLICT (login) DO NOTHING",
        (town, hash_token("gis_test_town_planner")),
    )
    mine = _sql(
        ledger_url,
        "SELECT count(*) FROM safety_hazard h JOIN admin_division v ON v.code = h.admin_code"
        " WHERE %s = ANY(v.ancestors)",
        (town,),
    )[0][0]
    assert mine > 0
    listed = api.get("/hazards?limit=1", headers=auth("town_planner")).json()
    assert listed["total"] == mine
    other = _sql(
        ledger_url,
        "SELECT h.id FROM safety_hazard h JOIN admin_division v ON v.code = h.admin_code"
        " WHERE NOT (%s = ANY(v.ancestors)) AND v.code LIKE '430204%%' LIMIT 1",
        (town,),
    )[0][0]
    assert api.get(f"/hazards/{other}", headers=auth("town_planner")).status_code == 404
    assert (
        api.get("/reports/monthly/2026-10?admin=430204", headers=auth("town_planner")).status_code
        == 404
    )
    report = api.get("/reports/monthly/2026-10", headers=auth("town_planner")).json()
    assert report["root"]["code"] == town
    _check_report(report, _expected(ledger_url, town, "2026-10"))
    csv_rows = api.get("/hazards/export.csv", headers=auth("town_planner")).content
    assert csv_rows.decode("utf-8-sig").count("\n") == mine + 2
