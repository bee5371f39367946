"""台账 export in the layout bureaus print: a title row, one header row, one row per 隐患.

CSV (UTF-8 with BOM, so Excel opens it) and XLSX. Cells that a spreadsheet would run as a
formula (``= + - @``) are prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import io
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.domain.pii import mask_name
from gis_service.domain.scope import Principal
from gis_service.errors import TooLarge
from gis_service.hazards import ledger
from gis_service.hazards.stats import LEVEL_ZH, SECTOR_ZH

MAX_ROWS = 100_000
_CST = ZoneInfo("Asia/Shanghai")
STATUS_ZH = {
    "found": "已发现",
    "assigned": "已交办",
    "rectifying": "整改中",
    "closeout_requested": "申请销号",
    "closed": "已销号",
}
VIA_ZH = {
    "self_check": "企业自查",
    "inspection": "执法检查",
    "grid_patrol": "网格员巡查",
    "public_report": "群众举报",
    "expert": "专家指导服务",
    "covert": "暗查暗访",
    "assigned_from_above": "上级交办",
    "survey": "普查",
}
HEADER = (
    "序号",
    "隐患编号",
    "隐患名称",
    "所在单位",
    "行业领域",
    "所在乡镇（街道）",
    "所在村（社区）",
    "隐患等级",
    "隐患来源",
    "发现日期",
    "整改责任单位",
    "整改责任人",
    "整改措施",
    "整改期限",
    "整改状态",
    "是否逾期",
    "挂牌督办",
    "销号日期",
)

_NAMES = text(
    """SELECT v.code, v.name AS village, t.name AS township
       FROM admin_division v LEFT JOIN admin_division t ON t.code = v.parent_code
       WHERE v.code = ANY(:codes)"""
)


def _local_date(value: Any) -> str:
    return value.astimezone(_CST).date().isoformat() if value is not None else ""


async def ledger_rows(
    conn: AsyncConnection, principal: Principal, flt: ledger.HazardFilter
) -> list[list[str]]:
    """The filtered ledger in scope as 台账 rows (ordered by hazard number)."""
    where = flt.where(principal)
    n = (
        await conn.execute(select(func.count()).select_from(ledger.ledger_from()).where(*where))
    ).scalar_one()
    if n > MAX_ROWS:
        raise TooLarge(detail=f"{n} rows; narrow the filters to at most {MAX_ROWS}")
    rows = (
        await conn.execute(
            select(*ledger.ledger_columns(), ledger.H.c.measures)
            .select_from(ledger.ledger_from())
            .where(*where)
            .order_by(ledger.H.c.hazard_no)
        )
    ).all()
    codes = sorted({r.admin_code for r in rows if r.admin_code})
    names = {r.code: r for r in (await conn.execute(_NAMES, {"codes": codes})).all()}
    out = []
    for i, r in enumerate(rows, 1):
        place = names.get(r.admin_code)
        person = r.responsible_person if principal.sees_pii else mask_name(r.responsible_person)
        out.append(
            [
                str(i),
                r.hazard_no,
                r.title,
                r.enterprise_name or r.responsible_org or "",
                SECTOR_ZH.get(r.sector or "none", ""),
                (place.township or "") if place else "",
                place.village if place else "",
                LEVEL_ZH[r.level],
                VIA_ZH.get(r.found_via or "", ""),
                _local_date(r.found_at),
                r.responsible_org or "",
                person or "",
                r.measures or "",
                r.deadline.isoformat() if r.deadline else "",
                STATUS_ZH[r.status],
                f"是（{r.days_overdue}天）" if r.overdue else "否",
                "是" if r.escalated else "否",
                _local_date(r.closed_at),
            ]
        )
    return out


def _safe(cell: str) -> str:
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def to_csv(title: str, rows: list[list[str]]) -> bytes:
    """Title row, header row, data rows; UTF-8 with BOM."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([title])
    w.writerow(HEADER)
    w.writerows([_safe(c) for c in r] for r in rows)
    return ("\ufeff" + buf.getvalue()).encode()


def to_xlsx(title: str, rows: list[list[str]]) -> bytes:
    """The same layout as an Excel sheet, the title merged across the columns."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook(write_only=False)
    ws = wb.active
    assert ws is not None
    ws.title = "隐患台账"
    ws.append([title])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADER))
    ws["A1"].font = Font(bold=True, size=14)
    ws["A1"].alignment = Alignment(horizontal="center")
    ws.append(list(HEADER))
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for r in rows:
        ws.append([_safe(c) for c in r])
    ws.freeze_panes = "A3"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


#: Format → (writer, media type).
FORMATS = {
    "csv": (to_csv, "text/csv; charset=utf-8"),
    "xlsx": (to_xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}
