"""Seed classification_scheme: 四色, 隐患等级, 险情等级, 风险区, 森林火险, 预警, 避难场所, 事件等级.

Colours are the project's palette (no standard fixes hex values); maps, legends and
printed 通报 all read them from here. Sources: shared/reference/DOMAIN.md appendix.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RED, ORANGE, YELLOW, BLUE, GREEN = "#e60000", "#ff8c00", "#ffd700", "#1e6fff", "#2e9e44"

# key, title_zh, title_en, basis, classes [(key, zh, en, colour, min, max)] in display order
SCHEMES: list[
    tuple[str, str, str, str, list[tuple[str, str, str, str, float | None, float | None]]]
] = [
    (
        "enterprise_risk_4color",
        "安全风险四色分级",
        "Enterprise safety risk (four colours)",
        "安委办〔2016〕11号",
        [
            ("red", "重大风险", "Major risk", RED, None, None),
            ("orange", "较大风险", "Larger risk", ORANGE, None, None),
            ("yellow", "一般风险", "General risk", YELLOW, None, None),
            ("blue", "低风险", "Low risk", BLUE, None, None),
        ],
    ),
    (
        "hazard_level",
        "事故隐患等级",
        "Hidden-hazard level",
        "安全生产事故隐患排查治理暂行规定（16号令）",
        [
            ("major", "重大事故隐患", "Major hazard", RED, None, None),
            ("general", "一般事故隐患", "General hazard", YELLOW, None, None),
        ],
    ),
    (
        "geohazard_danger_grade",
        "地质灾害险情等级",
        "Geohazard danger grade (threatened people)",
        "国家突发地质灾害应急预案",
        [
            ("I", "特大型（Ⅰ级）", "Grade I (very large)", RED, 1000, None),
            ("II", "大型（Ⅱ级）", "Grade II (large)", ORANGE, 500, 1000),
            ("III", "中型（Ⅲ级）", "Grade III (medium)", YELLOW, 100, 500),
            ("IV", "小型（Ⅳ级）", "Grade IV (small)", BLUE, 0, 100),
        ],
    ),
    (
        "geohazard_risk_zone",
        "地质灾害风险区等级",
        "Geohazard risk zone level",
        "全国地质灾害防治“十四五”规划",
        [
            ("very_high", "极高风险", "Very high", RED, None, None),
            ("high", "高风险", "High", ORANGE, None, None),
            ("medium", "中风险", "Medium", YELLOW, None, None),
            ("low", "低风险", "Low", BLUE, None, None),
        ],
    ),
    (
        "forest_fire_danger_5",
        "森林火险等级",
        "Forest-fire danger level (ascending)",
        "QX/T 77-2007；GB/T 36743-2018；指数分档 LY/T 1172-95",
        [
            ("1", "一级 低度危险", "Level 1 low", GREEN, 0, 25),
            ("2", "二级 较低危险", "Level 2 fairly low", BLUE, 26, 50),
            ("3", "三级 较高危险", "Level 3 fairly high", YELLOW, 51, 72),
            ("4", "四级 高度危险", "Level 4 high", ORANGE, 73, 90),
            ("5", "五级 极高危险", "Level 5 extreme", RED, 91, None),
        ],
    ),
    (
        "warning_4color",
        "预警等级",
        "Warning level",
        "气象灾害预警信号；突发事件预警分级",
        [
            ("red", "红色预警（Ⅰ级）", "Red (I)", RED, None, None),
            ("orange", "橙色预警（Ⅱ级）", "Orange (II)", ORANGE, None, None),
            ("yellow", "黄色预警（Ⅲ级）", "Yellow (III)", YELLOW, None, None),
            ("blue", "蓝色预警（Ⅳ级）", "Blue (IV)", BLUE, None, None),
        ],
    ),
    (
        "shelter_grade",
        "应急避难场所等级",
        "Shelter grade",
        "GB/T 44013-2024",
        [
            ("province", "省级", "Province", "#00441b", None, None),
            ("city", "市级", "City", "#1b7837", None, None),
            ("county", "县级", "County", "#5aae61", None, None),
            ("township", "乡镇（街道）级", "Township", "#a6dba0", None, None),
            ("village", "村（社区）级", "Village", "#d9f0d3", None, None),
        ],
    ),
    (
        "incident_level_4",
        "突发事件等级",
        "Incident level",
        "突发事件应对法",
        [
            ("I", "特别重大（Ⅰ级）", "Especially major (I)", RED, None, None),
            ("II", "重大（Ⅱ级）", "Major (II)", ORANGE, None, None),
            ("III", "较大（Ⅲ级）", "Larger (III)", YELLOW, None, None),
            ("IV", "一般（Ⅳ级）", "General (IV)", BLUE, None, None),
        ],
    ),
]


def upgrade() -> None:
    conn = op.get_bind()
    for key, title_zh, title_en, basis, classes in SCHEMES:
        scheme_id = conn.execute(
            sa.text(
                "INSERT INTO classification_scheme (key, version, title_zh, title_en, basis, source)"
                " VALUES (:key, 1, :zh, :en, :basis, 'seed') RETURNING id"
            ),
            {"key": key, "zh": title_zh, "en": title_en, "basis": basis},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO classification_class"
                " (scheme_id, key, zh_name, en_name, ord, color, min_value, max_value, source)"
                " VALUES (:sid, :key, :zh, :en, :ord, :color, :lo, :hi, 'seed')"
            ),
            [
                {
                    "sid": scheme_id,
                    "key": k,
                    "zh": zh,
                    "en": en,
                    "ord": i + 1,
                    "color": c,
                    "lo": lo,
                    "hi": hi,
                }
                for i, (k, zh, en, c, lo, hi) in enumerate(classes)
            ],
        )


def downgrade() -> None:
    keys = [s[0] for s in SCHEMES]
    op.get_bind().execute(
        sa.text("DELETE FROM classification_scheme WHERE key = ANY(:keys) AND version = 1"),
        {"keys": keys},
    )
