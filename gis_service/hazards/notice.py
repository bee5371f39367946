"""一通报: the draft monthly notice, in Chinese, from a monthly report.

One :class:`Notice` (title, paragraphs, tables) is built from the report, then written as
Markdown, HTML, DOCX or PDF by small writers, so the three never disagree on a figure.
"""

from __future__ import annotations

import datetime as dt
import html
import io
from dataclasses import dataclass, field
from typing import Any

from gis_service.hazards.stats import closure_rate

LEVEL_NAMES = {
    "province": "省",
    "prefecture": "市",
    "county": "县（区）",
    "township": "乡镇（街道）",
}


@dataclass
class Table:
    """A captioned table: header row and body rows, all text."""

    caption: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Notice:
    """The notice's content, independent of the file format."""

    title: str
    paragraphs: list[str]
    tables: list[Table]
    closing: list[str]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _signed(value: int | float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if value == 0:
        return "持平"
    return f"{'增加' if value > 0 else '减少'}{abs(value):g}{unit}"


def _month_zh(month: str) -> str:
    y, m = month.split("-")
    return f"{y}年{int(m)}月"


def _rank_change(r: dict[str, Any]) -> str:
    change = r.get("rank_change")
    if change is None:
        return "—"
    return "持平" if change == 0 else (f"↑{change}" if change > 0 else f"↓{-change}")


def build(report: dict[str, Any]) -> Notice:
    """The notice for one monthly report (figures copied, never recomputed here)."""
    t = report["totals"]
    root = report["root"]["name"]
    when = _month_zh(report["month"])
    major = next((r for r in report["by_level"] if r["level"] == "major"), None)
    day = dt.date.fromisoformat(report["as_of"][:10])
    until = f"{when}底" if report.get("complete", True) else f"{day.year}年{day.month}月{day.day}日"
    paragraphs = [
        f"{when}，{root}新排查发现事故隐患{t['found_month']}项，其中重大事故隐患"
        f"{t['major_found_month']}项（执法检查、暗查暗访发现{t['enforcement_found_month']}项）；"
        f"当月整改销号{t['closed_month']}项。",
        f"截至{until}，累计排查事故隐患{t['found_total']}项，已整改销号{t['closed_total']}项，"
        f"整改率{_pct(t['closure_rate'])}；未销号{t['open_end']}项，其中逾期未整改"
        f"{t['overdue_open']}项，重大事故隐患未销号{t['major_open']}项"
        f"（逾期{t['major_overdue_open']}项），挂牌督办未销号{t['escalated_open']}项。",
    ]
    if t["escalated_total"]:
        on_time = closure_rate(t["escalated_closed_on_time"], t["escalated_total"])
        paragraphs.append(
            f"挂牌督办隐患累计{t['escalated_total']}项，按期销号{t['escalated_closed_on_time']}项"
            f"（按期销号率{_pct(on_time)}）。"
        )
    if major is not None:
        paragraphs.append(
            f"重大事故隐患累计{major['found_total']}项，已销号{major['closed_total']}项，"
            f"整改率{_pct(major['closure_rate'])}。"
        )
    change = report.get("change")
    if change:
        prev = _month_zh(report["previous"]["month"])
        pp = change["closure_rate_pp"]
        paragraphs.append(
            f"与{prev}相比，新发现隐患{_signed(change['found_month'], '项')}，"
            f"整改销号{_signed(change['closed_month'], '项')}，"
            f"逾期未整改{_signed(change['overdue_open'], '项')}，"
            f"整改率{_signed(pp, '个百分点') if pp is not None else '—'}。"
        )
    tables: list[Table] = []
    if report["ranking"]:
        unit = LEVEL_NAMES.get(report["rank_level"] or "", "单位")
        ranking = Table(
            f"表1 各{unit}隐患排查治理情况排名",
            [
                "排名",
                "单位",
                "本月发现",
                "本月销号",
                "累计发现",
                "累计销号",
                "整改率",
                "逾期未整改",
                "重大隐患未销号",
                "得分",
                "较上月",
            ],
        )
        for r in report["ranking"]:
            ranking.rows.append(
                [
                    "—" if r["rank"] is None else str(r["rank"]),
                    r["name"],
                    str(r["found_month"]),
                    str(r["closed_month"]),
                    str(r["found_total"]),
                    str(r["closed_total"]),
                    _pct(r["closure_rate"]),
                    str(r["overdue_open"]),
                    str(r["major_open"]),
                    "—" if r["score"] is None else f"{r['score']:.2f}",
                    _rank_change(r),
                ]
            )
        tables.append(ranking)
        paragraphs.append(report["formula_zh"])
    levels = Table(
        f"表{len(tables) + 1} 分等级统计",
        ["隐患等级", "本月发现", "本月销号", "累计发现", "累计销号", "整改率", "逾期未整改"],
    )
    for r in report["by_level"]:
        levels.rows.append(
            [
                r["label_zh"],
                str(r["found_month"]),
                str(r["closed_month"]),
                str(r["found_total"]),
                str(r["closed_total"]),
                _pct(r["closure_rate"]),
                str(r["overdue_open"]),
            ]
        )
    tables.append(levels)
    overdue = Table(
        f"表{len(tables) + 1} 逾期未整改重大事故隐患清单",
        ["序号", "隐患编号", "隐患名称", "所在单位", "所在地", "整改期限", "逾期天数", "挂牌督办"],
    )
    for i, h in enumerate(report["overdue_major"], 1):
        overdue.rows.append(
            [
                str(i),
                h["hazard_no"],
                h["title"],
                h["unit"] or "—",
                f"{h['county_name'] or ''}{h['township_name'] or ''}",
                h["deadline"] or "—",
                str(h["days_overdue"]),
                "是" if h["escalated"] else "否",
            ]
        )
    tables.append(overdue)
    if not report["overdue_major"]:
        paragraphs.append("本月无逾期未整改重大事故隐患。")
    else:
        names = "、".join(
            f"{h['unit'] or h['hazard_no']}“{h['title']}”" for h in report["overdue_major"]
        )
        paragraphs.append(
            f"逾期未整改重大事故隐患{len(report['overdue_major'])}项：{names}，"
            "请属地政府和行业主管部门挂牌督办，限期整改销号。"
        )
    closing = [
        "各单位要对照排名查找差距，对逾期未整改隐患逐项落实整改责任、措施、资金、时限和预案，"
        "确保重大事故隐患动态清零。",
        "（本通报数据由隐患台账事件记录自动统计，统计截至"
        f" {report['as_of'][:16].replace('T', ' ')}。）",
    ]
    return Notice(
        title=f"{root}安全生产事故隐患排查治理情况通报（{when}）",
        paragraphs=paragraphs,
        tables=tables,
        closing=closing,
    )


def to_markdown(n: Notice) -> str:
    """The notice as Markdown (GitHub tables)."""
    out = [f"# {n.title}", "", *(p + "\n" for p in n.paragraphs)]
    for t in n.tables:
        out += [f"**{t.caption}**", "", "| " + " | ".join(t.header) + " |"]
        out.append("|" + "---|" * len(t.header))
        out += ["| " + " | ".join(c.replace("|", "／") for c in r) + " |" for r in t.rows]
        if not t.rows:
            out.append("| " + " | ".join(["无", *[""] * (len(t.header) - 1)]) + " |")
        out.append("")
    out += [p + "\n" for p in n.closing]
    return "\n".join(out)


def to_html(n: Notice) -> str:
    """The notice as a standalone HTML page."""
    e = html.escape
    parts = [
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>",
        f"<title>{e(n.title)}</title><style>body{{font-family:serif;max-width:60em;margin:auto}}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #444;padding:2px 6px}"
        "</style></head><body>",
        f"<h1>{e(n.title)}</h1>",
        *(f"<p>{e(p)}</p>" for p in n.paragraphs),
    ]
    for t in n.tables:
        parts.append(f"<table><caption>{e(t.caption)}</caption><thead><tr>")
        parts += [f"<th>{e(h)}</th>" for h in t.header]
        parts.append("</tr></thead><tbody>")
        for r in t.rows:
            parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>")
        parts.append("</tbody></table>")
    parts += [f"<p>{e(p)}</p>" for p in n.closing]
    parts.append("</body></html>")
    return "".join(parts)


def to_docx(n: Notice) -> bytes:
    """The notice as a Word document (tables as real Word tables)."""
    from docx import Document
    from docx.oxml.ns import qn
    from docx.shared import Pt

    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = "SimSun"
    style.font.size = Pt(12)
    style.element.rPr.rFonts.set(qn("w:eastAsia"), "宋体")
    doc.add_heading(n.title, level=1)
    for p in n.paragraphs:
        doc.add_paragraph(p)
    for t in n.tables:
        doc.add_paragraph(t.caption)
        table = doc.add_table(rows=1, cols=len(t.header))
        table.style = "Table Grid"
        for cell, h in zip(table.rows[0].cells, t.header, strict=True):
            cell.text = h
        for r in t.rows:
            for cell, value in zip(table.add_row().cells, r, strict=True):
                cell.text = value
    for p in n.closing:
        doc.add_paragraph(p)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def to_pdf(n: Notice) -> bytes:
    """The notice as PDF (A4 landscape; the Adobe CID font STSong-Light needs no font file)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer
    from reportlab.platypus import Table as PdfTable

    font = "STSong-Light"
    pdfmetrics.registerFont(UnicodeCIDFont(font))
    body = ParagraphStyle("body", fontName=font, fontSize=11, leading=17, firstLineIndent=22)
    title = ParagraphStyle("title", fontName=font, fontSize=16, leading=24, alignment=1)
    cell = ParagraphStyle("cell", fontName=font, fontSize=8, leading=10)
    e = html.escape
    story: list[Any] = [Paragraph(e(n.title), title), Spacer(1, 8)]
    story += [Paragraph(e(p), body) for p in n.paragraphs]
    for t in n.tables:
        story += [Spacer(1, 8), Paragraph(e(t.caption), body)]
        rows = [[Paragraph(e(c), cell) for c in r] for r in [t.header, *t.rows]]
        story.append(
            PdfTable(
                rows,
                repeatRows=1,
                style=[
                    ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ],
            )
        )
    story += [Spacer(1, 8), *(Paragraph(e(p), body) for p in n.closing)]
    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=landscape(A4), title=n.title).build(story)
    return buf.getvalue()


#: Format → (writer returning bytes, media type, file suffix).
FORMATS: dict[str, tuple[Any, str]] = {
    "md": (lambda n: to_markdown(n).encode(), "text/markdown; charset=utf-8"),
    "html": (lambda n: to_html(n).encode(), "text/html; charset=utf-8"),
    "docx": (
        to_docx,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    "pdf": (to_pdf, "application/pdf"),
}


def render(report: dict[str, Any], fmt: str) -> tuple[bytes, str]:
    """The notice for ``report`` as ``fmt`` (md, html, docx, pdf): bytes and media type."""
    writer, media = FORMATS[fmt]
    data: bytes = writer(build(report))
    return data, media
