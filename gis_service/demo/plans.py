"""What each county of the demo should contain: its plan, its ledger sizes and the fixed figures.

石峰区 (430204) has a hand-written plan that reproduces the figures its bureau quotes (232 grids,
92 800 households, 379 enterprises by colour, 1 056 hazards); the other 株洲 counties get a
generic plan built from a few census-derived numbers, with ledger sizes scaled from 石峰区's.
Keeping the plans apart from the code that realises them makes the quoted figures easy to
find and check. ``AS_OF`` fixes the demo's "today" so that no date depends on the day the
generator runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

from gis_service.demo.outline import load_seats

__all__ = [
    "AS_OF",
    "CST",
    "HOUSEHOLDS_PER_GRID",
    "PERSONS_PER_HOUSEHOLD",
    "SECTORS",
    "SHIFENG",
    "Centre",
    "Plan",
    "Targets",
    "TownshipSeed",
    "city_plans",
    "scaled_targets",
]

CST = timezone(timedelta(hours=8))
#: The "today" of the demo: ledgers are dated relative to it so that results never depend on
#: the day the generator runs.
AS_OF = datetime(2026, 11, 22, 10, 0, tzinfo=CST)
HOUSEHOLDS_PER_GRID = 400
PERSONS_PER_HOUSEHOLD = 3.0


@dataclass(frozen=True)
class Centre:
    """An urban centre: position, radius (m), street angle (°); a town gets a finer lattice."""

    lon: float
    lat: float
    radius: float
    angle: float
    kind: Literal["city", "town"] = "city"


@dataclass(frozen=True)
class TownshipSeed:
    """The seat of a 街道 or 镇, for counties whose townships are placed by hand."""

    name: str
    kind: Literal["subdistrict", "town"]
    lon: float
    lat: float


@dataclass(frozen=True)
class Targets:
    """Ledger sizes of a county: enterprises per colour, hazards, and the survey layers."""

    colours: tuple[int, int, int, int]  # red, orange, yellow, blue
    hazards: int
    hazards_closed: int
    geohazards: int
    zones: int
    shelters: int
    forests: int
    fires: int
    facilities: int


@dataclass(frozen=True)
class Plan:
    """Everything that makes one county differ from another; the generator does the rest.

    ``targets`` and ``grids`` are set where the bureau quotes the figures; otherwise they are
    derived from ``households``.
    """

    code: str
    households: int
    urban_share: float
    hilliness: float
    centres: tuple[Centre, ...]
    townships: tuple[TownshipSeed, ...] = ()
    n_subdistricts: int = 0
    n_towns: int = 0
    industrial_spots: tuple[tuple[float, float, float, bool], ...] = ()
    sector_weights: tuple[float, float, float, float, float, float] = (6, 1, 1, 0, 82, 10)
    streams: tuple[str, ...] = ()
    targets: Targets | None = None
    grids: int | None = None
    #: Outbuildings (杂屋, sheds) per rural house, and households per rural house.
    outbuildings: float = 0.95
    households_per_house: float = 0.95


SECTORS = ("hazchem", "fireworks", "non_coal_mine", "coal_mine", "industry_trade", "other")

SHIFENG = Plan(
    code="430204",
    households=92_800,
    urban_share=0.85,
    hilliness=0.55,
    centres=(
        Centre(113.110, 27.876, 3700.0, 18.0),
        Centre(113.160, 27.899, 1500.0, -8.0),
        Centre(113.158, 27.972, 600.0, 25.0, "town"),
    ),
    townships=(
        TownshipSeed("清水塘街道", "subdistrict", 113.068, 27.886),
        TownshipSeed("铜塘湾街道", "subdistrict", 113.094, 27.864),
        TownshipSeed("响石岭街道", "subdistrict", 113.120, 27.868),
        TownshipSeed("井墩街道", "subdistrict", 113.122, 27.897),
        TownshipSeed("田心街道", "subdistrict", 113.160, 27.902),
        TownshipSeed("龙头铺镇", "town", 113.158, 27.972),
    ),
    industrial_spots=((113.066, 27.889, 1900.0, True), (113.168, 27.905, 750.0, False)),
    sector_weights=(7, 1.5, 1, 0, 81, 9.5),
    streams=("霞湾港", "白石港"),
    targets=Targets(
        colours=(1, 37, 229, 112),
        hazards=1056,
        hazards_closed=986,
        geohazards=42,
        zones=14,
        shelters=28,
        forests=18,
        fires=34,
        facilities=150,
    ),
    grids=232,
    outbuildings=0.25,
    households_per_house=1.3,
)


#: Counties other than 石峰区: households (≈ 2020 census population / 3), urban share,
#: hilliness, seat town radius (m) and street angle (°), 街道 and 镇 counts, sector weights
#: (hazchem, fireworks, non-coal mine, coal mine, industry & trade, other; 醴陵 makes fireworks).
_COUNTY_SPECS: dict[str, tuple[int, float, float, float, float, int, int, tuple[float, ...]]] = {
    "430202": (120_000, 0.88, 0.35, 4200, 15, 5, 1, (5, 1, 1, 0, 83, 10)),
    "430203": (107_000, 0.86, 0.45, 4000, 22, 6, 2, (5, 1, 1, 0, 78, 15)),
    "430211": (147_000, 0.85, 0.40, 5000, 5, 4, 3, (6, 1, 1, 0, 82, 10)),
    "430212": (90_000, 0.38, 0.55, 2200, 30, 0, 8, (5, 6, 4, 0, 75, 10)),
    "430223": (233_000, 0.42, 0.70, 3000, 10, 3, 14, (4, 5, 5, 4, 72, 10)),
    "430224": (183_000, 0.40, 0.80, 2600, 0, 3, 13, (3, 4, 6, 3, 74, 10)),
    "430225": (60_000, 0.36, 1.00, 1800, 20, 1, 9, (3, 2, 6, 1, 78, 10)),
    "430281": (317_000, 0.50, 0.60, 3800, 15, 5, 19, (4, 22, 4, 0, 60, 10)),
}


def _generic_plan(code: str) -> Plan:
    hh, urban, hills, radius, angle, n_sub, n_towns, sectors = _COUNTY_SPECS[code]
    seat = load_seats()[code]
    w = tuple(float(v) for v in sectors)
    return Plan(
        code=code,
        households=hh,
        urban_share=urban,
        hilliness=hills,
        centres=(Centre(seat[0], seat[1], radius, angle),),
        n_subdistricts=n_sub,
        n_towns=n_towns,
        sector_weights=(w[0], w[1], w[2], w[3], w[4], w[5]),
    )


def city_plans() -> list[Plan]:
    """Plans of all nine counties, in code order (石峰区's hand-written one among them)."""
    return [
        SHIFENG if code == SHIFENG.code else _generic_plan(code)
        for code in sorted([*_COUNTY_SPECS, SHIFENG.code])
    ]


def scaled_targets(households: int, sectors_weight_industry: float) -> Targets:
    """Ledger sizes for counties the bureau did not quote: proportional to 石峰区's."""
    f = households / SHIFENG.households
    base = SHIFENG.targets
    assert base is not None
    n_ent = max(40, round(379 * f * sectors_weight_industry))
    red = max(1, round(n_ent * 0.004))
    orange = round(n_ent * 0.098)
    yellow = round(n_ent * 0.604)
    blue = n_ent - red - orange - yellow
    hazards = round(n_ent * 1056 / 379)
    return Targets(
        colours=(red, orange, yellow, blue),
        hazards=hazards,
        hazards_closed=round(hazards * 986 / 1056),
        geohazards=max(10, round(base.geohazards * f * 1.6)),
        zones=max(4, round(base.zones * f * 1.4)),
        shelters=max(10, round(base.shelters * f)),
        forests=max(8, round(base.forests * f * 1.8)),
        fires=max(10, round(base.fires * f * 1.5)),
        facilities=max(40, round(base.facilities * f)),
    )
