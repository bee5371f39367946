"""The domain schema (DESIGN §4) as SQLAlchemy 2 + GeoAlchemy2 models.

Storage SRID is 4490 (CGCS2000, lon/lat). Every geometry column has a GiST index and a
validity check. Enumerations are check constraints built from the tuples below, so the
Python side and the database agree on one list. Located tables carry ``admin_code``
(12-digit village) and ``grid_code`` (15 digits), stamped by a trigger from the geometry
(see ``db/sql/functions.sql``); the tuple :data:`LOCATED_TABLES` names them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from gis_service.types import STORAGE_SRID

# ---------------------------------------------------------------------------
# Enumerations (keys stored in the database; Chinese labels live in enums.py)
# ---------------------------------------------------------------------------
ADMIN_LEVELS = ("province", "prefecture", "county", "township", "village")
URBAN_RURAL_CODES = ("111", "112", "121", "122", "123", "210", "220")
SOURCE_CRS = ("CGCS2000", "WGS84", "GCJ02", "BD09", "XIAN80", "BEIJING54", "GK", "LOCAL")
GRID_KINDS = ("basic", "dedicated", "micro")
GRID_ROLES = ("grid_worker", "grid_leader", "grid_instructor", "grid_supervisor", "grid_admin")
EMPLOYMENT = ("fulltime", "parttime")
RESPONSIBILITY_TARGETS = (
    "admin_division",
    "grid",
    "enterprise",
    "geohazard_point",
    "geohazard_zone",
    "forest_patch",
    "shelter",
)
RESPONSIBILITY_LEVELS = ("city", "county", "township", "village", "group")
DUTIES = (
    "baobao",
    "prevention_lead",
    "monitor",
    "patroller",
    "warner",
    "evacuation_lead",
    "ranger",
    "disaster_info_officer",
    "regulator",
    "enterprise_principal",
)
STRUCTURES = ("masonry", "reinforced_concrete", "steel", "wood", "other")
BUILDING_USES = ("residential", "commercial", "industrial", "public", "mixed", "other")
YEAR_BANDS = ("pre1980", "1980s", "1990s", "2000s", "2010s", "2020s")
URBAN_RURAL = ("urban", "rural")
SECTORS = ("hazchem", "fireworks", "non_coal_mine", "coal_mine", "industry_trade", "other")
SPECIAL_FLAGS = (
    "dust_explosion",
    "ammonia_refrigeration",
    "confined_space",
    "hazardous_process",
    "major_hazard_source",
    "in_chemical_park",
)
RISK_COLORS = ("red", "orange", "yellow", "blue")
HAZARD_LEVELS = ("general", "major")
HAZARD_CATEGORIES = ("basic_management", "site")
HAZARD_FOUND_VIA = (
    "self_check",
    "inspection",
    "grid_patrol",
    "public_report",
    "expert",
    "covert",
    "assigned_from_above",
    "survey",
)
HAZARD_STATUSES = ("found", "assigned", "rectifying", "closeout_requested", "closed")
GEOHAZARD_KINDS = (
    "landslide",
    "collapse",
    "debris_flow",
    "ground_collapse",
    "ground_fissure",
    "subsidence",
)
GEOHAZARD_SCALES = ("giant", "large", "medium", "small")
DANGER_GRADES = ("I", "II", "III", "IV")
STABILITY = ("stable", "basically_stable", "unstable")
ZONE_RISK_LEVELS = ("very_high", "high", "medium", "low")
SHELTER_GRADES = ("province", "city", "county", "township", "village")
SPACE_TYPES = ("indoor", "outdoor")
DURATION_CLASSES = ("emergency", "short", "medium", "long")
SHELTER_HAZARDS = (
    "earthquake",
    "flood",
    "typhoon",
    "geohazard",
    "fire",
    "hazchem",
    "public_health",
)
SHELTER_STATUSES = ("closed", "opening", "open", "full")
FIRE_SOURCES = ("satellite", "tower", "video_ai", "uav", "patrol", "public", "checkpoint")
FIRE_VERIFICATION = ("pending", "dispatched", "feedback", "closed")
FIRE_VERDICTS = ("forest_fire", "agri_burning", "industrial_heat", "false_alarm", "other")
FACILITY_KINDS = (
    "school",
    "hospital",
    "welfare_home",
    "culture_venue",
    "scenic_site",
    "hotel",
    "stadium",
    "religious_site",
    "market",
    "gas_station",
    "depot",
    "other",
)
BARRIER_KINDS = ("road_major", "road_minor", "river", "rail", "wall")
HAZARD_LAYER_KINDS = ("hazard", "exposure", "vulnerability", "risk", "prevention_zoning")
DATA_TYPES = ("raster", "vector")
WARNING_LEVELS = ("blue", "yellow", "orange", "red")
WARNING_SOURCES = (
    "cma_signal",
    "geohazard_meteo",
    "flash_flood",
    "hydrology",
    "forest_fire_danger",
    "other",
)
ROLES = ("admin", "planner", "surveyor", "commander", "grid_worker", "viewer")

ADMIN_CODE_PATTERN = r"^(\d{6}|\d{9}|\d{12})$"


def one_of(column: str, values: tuple[str, ...], *, nullable: bool = False) -> str:
    """SQL check-constraint text: ``column`` takes one of ``values``."""
    listed = ", ".join(f"'{v}'" for v in values)
    check = f"{column} IN ({listed})"
    return f"({column} IS NULL OR {check})" if nullable else check


def subset_of(column: str, values: tuple[str, ...]) -> str:
    """SQL check-constraint text: a text[] ``column`` holds only ``values``."""
    listed = ", ".join(f"'{v}'" for v in values)
    return f"{column} <@ ARRAY[{listed}]::text[]"


def valid_geometry(column: str, *, nullable: bool = False) -> str:
    """SQL check text: a stored geometry is valid, non-empty and in lon/lat range.

    PostGIS stores NaN coordinates and out-of-range values without complaint, so the
    database itself refuses them (BAD_INPUTS D1, D2, D7). The range test reads the box
    stored with the geometry (``@``): ±180/±90 are exact in its float box, and it is a
    fraction of the cost of four ``ST_XMin``-style extents (migration 0013).
    """
    check = (
        f"ST_IsValid({column}) AND NOT ST_IsEmpty({column}) "
        f"AND {column} @ 'BOX(-180 -90,180 90)'::box2d"
    )
    return f"({column} IS NULL OR ({check}))" if nullable else f"({check})"


def ascii_digits(column: str, n: int) -> str:
    """SQL check text: NULL or exactly ``n`` ASCII digits (a regex costs 2 s per million rows)."""
    digits = f"octet_length({column}) = {n} AND ltrim({column}, '0123456789') = ''"
    return f"{column} IS NULL OR ({digits})"


@dataclass(frozen=True)
class ValueRule:
    """What a plain value CHECK says, in a form Python can test on values about to be written.

    A first bulk load proves such CHECKs on its own values (a set or a min/max over a
    column in memory) and lets the database skip them: PostgreSQL evaluating the building
    table's nine cost 2.6 s of backend CPU per million rows. The SQL text stays the one
    the migrations created; :func:`value_check` keeps the two side by side.
    """

    columns: tuple[str, ...]
    #: The value is one of these.
    choices: tuple[str, ...] = ()
    #: The value is exactly this many ASCII digits.
    digits: int | None = None
    low: int | None = None
    high: int | None = None
    nullable: bool = True

    def holds(self, values: Iterable[Any]) -> bool:
        """True if every value passes (None only where ``nullable``)."""
        distinct = set(values)
        if None in distinct:
            if not self.nullable:
                return False
            distinct.discard(None)
        if self.choices:
            return distinct <= set(self.choices)
        if self.digits is not None:
            return all(
                isinstance(v, str) and len(v) == self.digits and v.isascii() and v.isdigit()
                for v in distinct
            )
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in distinct):
            return False
        low = -(2**63) if self.low is None else self.low
        high = 2**63 if self.high is None else self.high
        return not distinct or (min(distinct) >= low and max(distinct) <= high)


def value_check(sql: str, name: str, rule: ValueRule) -> CheckConstraint:
    """A CHECK with its :class:`ValueRule` (``info["rule"]``), for bulk loads to prove."""
    return CheckConstraint(sql, name=name, info={"rule": rule})


def geometry(kind: str) -> Geometry:
    """A 2D geometry column in the storage SRID with a GiST index."""
    return Geometry(geometry_type=kind, srid=STORAGE_SRID, spatial_index=True)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with the project's constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING)


class Common:
    """Columns every table has: ``id``, timestamps, provenance and an optimistic-lock version."""

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    #: Provenance: an import batch, ``demo``, or ``user:<login>``.
    source: Mapped[str | None] = mapped_column(Text)
    #: Incremented by trigger on every update; the ETag of the row.
    row_version: Mapped[int] = mapped_column(Integer, server_default=text("1"), nullable=False)


class Located(Common):
    """A row with a place: stamped with its village and grid, and the CRS it came in."""

    admin_code: Mapped[str | None] = mapped_column(String(12), index=True)
    grid_code: Mapped[str | None] = mapped_column(String(15), index=True)
    source_crs: Mapped[str | None] = mapped_column(String(12))

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:  # noqa: N805
        return cls._located_args()

    @classmethod
    def _located_args(cls) -> tuple[Any, ...]:
        return (
            value_check(
                one_of("source_crs", SOURCE_CRS, nullable=True),
                "source_crs",
                ValueRule(("source_crs",), choices=SOURCE_CRS),
            ),
            value_check(
                ascii_digits("admin_code", 12),
                "admin_code_village",
                ValueRule(("admin_code",), digits=12),
            ),
            value_check(
                ascii_digits("grid_code", 15), "grid_code_15", ValueRule(("grid_code",), digits=15)
            ),
        )


# ---------------------------------------------------------------------------
# A. Administrative and spatial reference
# ---------------------------------------------------------------------------
class AdminDivision(Common, Base):
    """行政区划: the spine; scope, statistics and rankings roll up along ``ancestors``."""

    __tablename__ = "admin_division"

    code: Mapped[str] = mapped_column(String(12), unique=True, nullable=False)
    level: Mapped[str] = mapped_column(String(12), nullable=False)
    parent_code: Mapped[str | None] = mapped_column(
        String(12), ForeignKey("admin_division.code", onupdate="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(Text, nullable=False)
    short_name: Mapped[str | None] = mapped_column(Text)
    urban_rural_code: Mapped[str | None] = mapped_column(String(3))
    #: Codes from the province down to this unit itself, maintained by trigger.
    ancestors: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    boundary: Mapped[Any] = mapped_column(geometry("MULTIPOLYGON"), nullable=True)
    label_point: Mapped[Any] = mapped_column(geometry("POINT"), nullable=True)
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    boundary_source: Mapped[str | None] = mapped_column(Text)
    boundary_year: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint(one_of("level", ADMIN_LEVELS), name="level"),
        CheckConstraint(
            r"(level IN ('province', 'prefecture', 'county') AND code ~ '^\d{6}$')"
            r" OR (level = 'township' AND code ~ '^\d{9}$')"
            r" OR (level = 'village' AND code ~ '^\d{12}$')",
            name="code_matches_level",
        ),
        CheckConstraint(
            one_of("urban_rural_code", URBAN_RURAL_CODES, nullable=True), name="urban_rural_code"
        ),
        CheckConstraint(valid_geometry("boundary", nullable=True), name="boundary_valid"),
        CheckConstraint("parent_code IS NULL OR parent_code <> code", name="not_own_parent"),
        Index("ix_admin_division_ancestors", "ancestors", postgresql_using="gin"),
        Index("ix_admin_division_level", "level"),
    )


class Grid(Common, Base):
    """网格: a versioned polygon inside one community, coded 6+3+3+3."""

    __tablename__ = "grid"

    grid_code: Mapped[str] = mapped_column(String(15), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(String(10), nullable=False, server_default="basic")
    community_code: Mapped[str] = mapped_column(
        String(12), ForeignKey("admin_division.code", onupdate="CASCADE"), nullable=False
    )
    geom: Mapped[Any] = mapped_column(geometry("MULTIPOLYGON"), nullable=False)
    households: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    population: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    area_m2: Mapped[float | None] = mapped_column(Float)
    #: ST_PointOnSurface(geom), maintained by trigger (migration 0016): the map's label.
    label_point: Mapped[Any] = mapped_column(geometry("POINT"), nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    valid_from: Mapped[dt.date] = mapped_column(
        Date, nullable=False, server_default=func.current_date()
    )
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    supersedes: Mapped[list[int]] = mapped_column(
        ARRAY(BigInteger), nullable=False, server_default=text("'{}'::bigint[]")
    )
    responsible_body: Mapped[str | None] = mapped_column(Text)
    remark: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )

    __table_args__ = (
        CheckConstraint(r"grid_code ~ '^\d{15}$'", name="grid_code_15"),
        CheckConstraint("substr(grid_code, 1, 12) = community_code", name="code_in_community"),
        CheckConstraint(one_of("kind", GRID_KINDS), name="kind"),
        CheckConstraint("households >= 0 AND population >= 0", name="counts_nonneg"),
        CheckConstraint(valid_geometry("geom"), name="geom_valid"),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="validity"),
        UniqueConstraint("grid_code", "version", name="uq_grid_code_version"),
        Index(
            "uq_grid_current_code",
            "grid_code",
            unique=True,
            postgresql_where=text("valid_to IS NULL"),
        ),
        Index("ix_grid_community_code", "community_code"),
    )


class Person(Common, Base):
    """A person (PII: name and phone are masked by role)."""

    __tablename__ = "person"

    name: Mapped[str] = mapped_column(Text, nullable=False)
    phone: Mapped[str | None] = mapped_column(String(20))
    org: Mapped[str | None] = mapped_column(Text)
    position: Mapped[str | None] = mapped_column(Text)
    #: The admin unit the person belongs to (scope of who may see them).
    admin_code: Mapped[str | None] = mapped_column(
        String(12), ForeignKey("admin_division.code", onupdate="CASCADE"), index=True
    )
    id_card_hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(r"phone IS NULL OR phone ~ '^[0-9+()\- ]{5,20}$'", name="phone"),
    )


class GridAssignment(Common, Base):
    """A person's role on a grid (网格员, 网格长 …) over a period."""

    __tablename__ = "grid_assignment"

    grid_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("grid.id", ondelete="CASCADE"), nullable=False, index=True
    )
    person_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("person.id", ondelete="CASCADE"), nullable=False, index=True
    )
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    employment: Mapped[str | None] = mapped_column(String(10))
    start_date: Mapped[dt.date] = mapped_column(
        Date, nullable=False, server_default=func.current_date()
    )
    end_date: Mapped[dt.date | None] = mapped_column(Date)

    __table_args__ = (
        CheckConstraint(one_of("role", GRID_ROLES), name="role"),
        CheckConstraint(one_of("employment", EMPLOYMENT, nullable=True), name="employment"),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="period"),
    )


class Responsibility(Common, Base):
    """包保/责任: a person answers for a target at a level with a duty."""

    __tablename__ = "responsibility"

    person_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("person.id", ondelete="CASCADE"), nullable=False, index=True
    )
    target_type: Mapped[str] = mapped_column(String(20), nullable=False)
    target_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    level: Mapped[str] = mapped_column(String(10), nullable=False)
    duty: Mapped[str] = mapped_column(String(24), nullable=False)
    #: Copied from the target so the scope filter needs no join.
    admin_code: Mapped[str | None] = mapped_column(String(12), index=True)
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)

    __table_args__ = (
        CheckConstraint(one_of("target_type", RESPONSIBILITY_TARGETS), name="target_type"),
        CheckConstraint(one_of("level", RESPONSIBILITY_LEVELS), name="level"),
        CheckConstraint(one_of("duty", DUTIES), name="duty"),
        Index("ix_responsibility_target", "target_type", "target_id"),
    )


# ---------------------------------------------------------------------------
# Exposure, enterprises, hazards
# ---------------------------------------------------------------------------
class Building(Located, Base):
    """房屋: survey exposure; carries the households that grids are cut by."""

    __tablename__ = "building"

    geom: Mapped[Any] = mapped_column(geometry("MULTIPOLYGON"), nullable=False)
    name: Mapped[str | None] = mapped_column(Text)
    households: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    population: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    structure: Mapped[str | None] = mapped_column(String(20))
    floors: Mapped[int | None] = mapped_column(Integer)
    use: Mapped[str | None] = mapped_column(String(12))
    year_band: Mapped[str | None] = mapped_column(String(8))
    urban_rural: Mapped[str | None] = mapped_column(String(5))
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )

    @classmethod
    def _located_args(cls) -> tuple[Any, ...]:
        return (
            *super()._located_args(),
            CheckConstraint(valid_geometry("geom"), name="geom_valid"),
            value_check(
                "households >= 0 AND population >= 0",
                "counts_nonneg",
                ValueRule(("households", "population"), low=0, nullable=False),
            ),
            value_check(
                "floors IS NULL OR floors BETWEEN -10 AND 200",
                "floors",
                ValueRule(("floors",), low=-10, high=200),
            ),
            *(
                value_check(one_of(column, keys, nullable=True), column, ValueRule((column,), keys))
                for column, keys in (
                    ("structure", STRUCTURES),
                    ("use", BUILDING_USES),
                    ("year_band", YEAR_BANDS),
                    ("urban_rural", URBAN_RURAL),
                )
            ),
        )


class Enterprise(Located, Base):
    """生产经营单位 with its 四色 safety-risk colour."""

    __tablename__ = "enterprise"

    uscc: Mapped[str | None] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    address: Mapped[str | None] = mapped_column(Text)
    sector: Mapped[str] = mapped_column(String(16), nullable=False)
    sub_sector: Mapped[str | None] = mapped_column(Text)
    special_flags: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    risk_level: Mapped[str] = mapped_column(String(6), nullable=False)
    assessed_at: Mapped[dt.date | None] = mapped_column(Date)
    employees: Mapped[int | None] = mapped_column(Integer)
    geom: Mapped[Any] = mapped_column(geometry("POINT"), nullable=False)
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )

    @classmethod
    def _located_args(cls) -> tuple[Any, ...]:
        return (
            *super()._located_args(),
            CheckConstraint(valid_geometry("geom"), name="geom_valid"),
            CheckConstraint(r"uscc IS NULL OR uscc ~ '^[0-9A-Z]{18}$'", name="uscc"),
            CheckConstraint(one_of("sector", SECTORS), name="sector"),
            CheckConstraint(subset_of("special_flags", SPECIAL_FLAGS), name="special_flags"),
            CheckConstraint(one_of("risk_level", RISK_COLORS), name="risk_level"),
            CheckConstraint("employees IS NULL OR employees >= 0", name="employees"),
            Index("ix_enterprise_risk_level", "risk_level"),
        )


class SafetyHazard(Located, Base):
    """隐患 ledger entry; every status change is a :class:`HazardEvent`."""

    __tablename__ = "safety_hazard"

    hazard_no: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    enterprise_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("enterprise.id", ondelete="SET NULL"), index=True
    )
    geom: Mapped[Any] = mapped_column(geometry("POINT"), nullable=True)
    level: Mapped[str] = mapped_column(String(8), nullable=False)
    category: Mapped[str | None] = mapped_column(String(20))
    #: How the hazard was found (DESIGN calls this ``source``; that name is provenance here).
    found_via: Mapped[str | None] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="found")
    escalated: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    responsible_org: Mapped[str | None] = mapped_column(Text)
    responsible_person_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("person.id", ondelete="SET NULL")
    )
    measures: Mapped[str | None] = mapped_column(Text)
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    found_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )

    @classmethod
    def _located_args(cls) -> tuple[Any, ...]:
        return (
            *super()._located_args(),
            CheckConstraint(valid_geometry("geom", nullable=True), name="geom_valid"),
            CheckConstraint(one_of("level", HAZARD_LEVELS), name="level"),
            CheckConstraint(one_of("category", HAZARD_CATEGORIES, nullable=True), name="category"),
            CheckConstraint(one_of("found_via", HAZARD_FOUND_VIA, nullable=True), name="found_via"),
            CheckConstraint(one_of("status", HAZARD_STATUSES), name="status"),
            CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)", name="closed_at"),
            Index("ix_safety_hazard_status", "status"),
        )


class HazardEvent(Common, Base):
    """One transition of a 隐患 (who, when, from, to, note): the ledger's audit trail."""

    __tablename__ = "hazard_event"

    hazard_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("safety_hazard.id", ondelete="CASCADE"), nullable=False, index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20), nullable=False)
    actor: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(one_of("from_status", HAZARD_STATUSES, nullable=True), name="from_status"),
        CheckConstraint(one_of("to_status", HAZARD_STATUSES), name="to_status"),
    )


class GeohazardPoint(Located, Base):
    """地质灾害隐患点 with threatened people and its danger grade (险情等级)."""

    __tablename__ = "geohazard_point"

    code: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    scale: Mapped[str | None] = mapped_column(String(8))
    danger_grade: Mapped[str | None] = mapped_column(String(3))
    stability: Mapped[str | None] = mapped_column(String(20))
    threatened_households: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    threatened_people: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    threatened_property: Mapped[float | None] = mapped_column(Float)
    monitoring: Mapped[str | None] = mapped_column(Text)
    two_cards_issued: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    closed: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    geom: Mapped[Any] = mapped_column(geometry("POINT"), nullable=False)
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )

    @classmethod
    def _located_args(cls) -> tuple[Any, ...]:
        return (
            *super()._located_args(),
            CheckConstraint(valid_geometry("geom"), name="geom_valid"),
            CheckConstraint(one_of("kind", GEOHAZARD_KINDS), name="kind"),
            CheckConstraint(one_of("scale", GEOHAZARD_SCALES, nullable=True), name="scale"),
            CheckConstraint(
                one_of("danger_grade", DANGER_GRADES, nullable=True), name="danger_grade"
            ),
            CheckConstraint(one_of("stability", STABILITY, nullable=True), name="stability"),
            CheckConstraint(
                "threatened_households >= 0 AND threatened_people >= 0", name="counts_nonneg"
            ),
        )


class GeohazardZone(Located, Base):
    """地质灾害风险区 (the zone half of 点面双控)."""

    __tablename__ = "geohazard_zone"

    code: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    risk_level: Mapped[str] = mapped_column(String(10), nullable=False)
    households: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    people: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    geom: Mapped[Any] = mapped_column(geometry("MULTIPOLYGON"), nullable=False)
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )

    @classmethod
    def _located_args(cls) -> tuple[Any, ...]:
        return (
            *super()._located_args(),
            CheckConstraint(valid_geometry("geom"), name="geom_valid"),
            CheckConstraint(one_of("risk_level", ZONE_RISK_LEVELS), name="risk_level"),
            CheckConstraint("households >= 0 AND people >= 0", name="counts_nonneg"),
        )


class Shelter(Located, Base):
    """应急避难场所 graded by GB/T 44013-2024, with capacity and runtime status."""

    __tablename__ = "shelter"

    name: Mapped[str] = mapped_column(Text, nullable=False)
    address: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(geometry("POINT"), nullable=False)
    site: Mapped[Any] = mapped_column(geometry("MULTIPOLYGON"), nullable=True)
    grade: Mapped[str] = mapped_column(String(10), nullable=False)
    space_type: Mapped[str | None] = mapped_column(String(8))
    duration_class: Mapped[str | None] = mapped_column(String(10))
    capacity: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    effective_area: Mapped[float | None] = mapped_column(Float)
    hazard_types: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    status: Mapped[str] = mapped_column(String(8), nullable=False, server_default="closed")
    current_occupancy: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )

    @classmethod
    def _located_args(cls) -> tuple[Any, ...]:
        return (
            *super()._located_args(),
            CheckConstraint(valid_geometry("geom"), name="geom_valid"),
            CheckConstraint(valid_geometry("site", nullable=True), name="site_valid"),
            CheckConstraint(one_of("grade", SHELTER_GRADES), name="grade"),
            CheckConstraint(one_of("space_type", SPACE_TYPES, nullable=True), name="space_type"),
            CheckConstraint(
                one_of("duration_class", DURATION_CLASSES, nullable=True), name="duration_class"
            ),
            CheckConstraint(subset_of("hazard_types", SHELTER_HAZARDS), name="hazard_types"),
            CheckConstraint(one_of("status", SHELTER_STATUSES), name="status"),
            CheckConstraint("capacity >= 0 AND current_occupancy >= 0", name="counts_nonneg"),
        )


class EvacuationRoute(Located, Base):
    """撤离路线 from a hazard point to a shelter."""

    __tablename__ = "evacuation_route"

    name: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(geometry("LINESTRING"), nullable=False)
    geohazard_point_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("geohazard_point.id", ondelete="CASCADE"), index=True
    )
    shelter_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("shelter.id", ondelete="SET NULL"), index=True
    )
    length_m: Mapped[float | None] = mapped_column(Float)

    @classmethod
    def _located_args(cls) -> tuple[Any, ...]:
        return (
            *super()._located_args(),
            CheckConstraint(valid_geometry("geom"), name="geom_valid"),
        )


class ForestPatch(Located, Base):
    """林区/林班/责任区 with its rangers (via :class:`Responsibility`)."""

    __tablename__ = "forest_patch"

    code: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    forest_type: Mapped[str | None] = mapped_column(Text)
    fuel_load: Mapped[float | None] = mapped_column(Float)
    area_ha: Mapped[float | None] = mapped_column(Float)
    geom: Mapped[Any] = mapped_column(geometry("MULTIPOLYGON"), nullable=False)
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )

    @classmethod
    def _located_args(cls) -> tuple[Any, ...]:
        return (
            *super()._located_args(),
            CheckConstraint(valid_geometry("geom"), name="geom_valid"),
        )


class FirePoint(Located, Base):
    """火点/热点 and its verification (核查) status and verdict."""

    __tablename__ = "fire_point"

    geom: Mapped[Any] = mapped_column(geometry("POINT"), nullable=False)
    source_kind: Mapped[str] = mapped_column(String(12), nullable=False)
    detected_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    confidence: Mapped[int | None] = mapped_column(Integer)
    verification_status: Mapped[str] = mapped_column(
        String(12), nullable=False, server_default="pending"
    )
    verdict: Mapped[str | None] = mapped_column(String(16))
    forest_patch_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("forest_patch.id", ondelete="SET NULL"), index=True
    )
    verified_by: Mapped[str | None] = mapped_column(Text)
    fed_back_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )

    @classmethod
    def _located_args(cls) -> tuple[Any, ...]:
        return (
            *super()._located_args(),
            CheckConstraint(valid_geometry("geom"), name="geom_valid"),
            CheckConstraint(one_of("source_kind", FIRE_SOURCES), name="source_kind"),
            CheckConstraint(
                one_of("verification_status", FIRE_VERIFICATION), name="verification_status"
            ),
            CheckConstraint(one_of("verdict", FIRE_VERDICTS, nullable=True), name="verdict"),
            CheckConstraint(
                "confidence IS NULL OR confidence BETWEEN 0 AND 100", name="confidence"
            ),
        )


class Facility(Located, Base):
    """普查公共服务设施 (school, hospital, welfare home …) keeping the survey's own columns."""

    __tablename__ = "facility"

    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    geom: Mapped[Any] = mapped_column(geometry("POINT"), nullable=False)
    #: People usually present (students, beds, residents): the exposure an impact counts.
    people: Mapped[int | None] = mapped_column(Integer)
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )

    @classmethod
    def _located_args(cls) -> tuple[Any, ...]:
        return (
            *super()._located_args(),
            CheckConstraint(valid_geometry("geom"), name="geom_valid"),
            CheckConstraint(one_of("kind", FACILITY_KINDS), name="kind"),
            CheckConstraint("people IS NULL OR people >= 0", name="people"),
            Index("ix_facility_kind", "kind"),
        )


class BarrierLine(Located, Base):
    """Streets, rivers, rail and walls: what grids follow and the base map draws."""

    __tablename__ = "barrier_line"

    kind: Mapped[str] = mapped_column(String(12), nullable=False)
    name: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(geometry("MULTILINESTRING"), nullable=False)
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )

    @classmethod
    def _located_args(cls) -> tuple[Any, ...]:
        return (
            *super()._located_args(),
            CheckConstraint(valid_geometry("geom"), name="geom_valid"),
            CheckConstraint(one_of("kind", BARRIER_KINDS), name="kind"),
        )


class Warning(Located, Base):
    """预警: an area and a level that drive an impact analysis."""

    __tablename__ = "warning"

    kind: Mapped[str] = mapped_column(Text, nullable=False)
    source_kind: Mapped[str] = mapped_column(String(20), nullable=False, server_default="other")
    level: Mapped[str] = mapped_column(String(6), nullable=False)
    geom: Mapped[Any] = mapped_column(geometry("MULTIPOLYGON"), nullable=True)
    admin_codes: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    issued_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    valid_from: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    text_body: Mapped[str | None] = mapped_column("text", Text)

    @classmethod
    def _located_args(cls) -> tuple[Any, ...]:
        return (
            *super()._located_args(),
            CheckConstraint(valid_geometry("geom", nullable=True), name="geom_valid"),
            CheckConstraint(one_of("level", WARNING_LEVELS), name="level"),
            CheckConstraint(one_of("source_kind", WARNING_SOURCES), name="source_kind"),
            CheckConstraint("geom IS NOT NULL OR cardinality(admin_codes) > 0", name="has_area"),
        )


# ---------------------------------------------------------------------------
# Configuration, users, audit
# ---------------------------------------------------------------------------
class ClassificationScheme(Common, Base):
    """A graded enumeration (四色, 险情等级 …) as data, versioned."""

    __tablename__ = "classification_scheme"

    key: Mapped[str] = mapped_column(String(40), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    title_zh: Mapped[str] = mapped_column(Text, nullable=False)
    title_en: Mapped[str] = mapped_column(Text, nullable=False)
    region: Mapped[str] = mapped_column(Text, nullable=False, server_default="nation")
    basis: Mapped[str | None] = mapped_column(Text)
    effective_from: Mapped[dt.date | None] = mapped_column(Date)

    __table_args__ = (UniqueConstraint("key", "version", name="uq_scheme_key_version"),)


class ClassificationClass(Common, Base):
    """One class of a scheme, with its colour: maps and printed 通报 use the same one."""

    __tablename__ = "classification_class"

    scheme_id: Mapped[int] = mapped_column(
        BigInteger,
        ForeignKey("classification_scheme.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )
    key: Mapped[str] = mapped_column(String(40), nullable=False)
    zh_name: Mapped[str] = mapped_column(Text, nullable=False)
    en_name: Mapped[str] = mapped_column(Text, nullable=False)
    ord: Mapped[int] = mapped_column(Integer, nullable=False)
    color: Mapped[str] = mapped_column(String(7), nullable=False)
    min_value: Mapped[float | None] = mapped_column(Float)
    max_value: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        CheckConstraint("color ~ '^#[0-9a-f]{6}$'", name="color_hex"),
        UniqueConstraint("scheme_id", "key", name="uq_class_scheme_key"),
        UniqueConstraint("scheme_id", "ord", name="uq_class_scheme_ord"),
    )


class HazardLayer(Common, Base):
    """致灾/风险图层 registry: raster (COG) and vector hazard layers."""

    __tablename__ = "hazard_layer"

    key: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    hazard_type: Mapped[str] = mapped_column(Text, nullable=False)
    layer_kind: Mapped[str] = mapped_column(String(20), nullable=False)
    data_type: Mapped[str] = mapped_column(String(6), nullable=False)
    scenario: Mapped[str | None] = mapped_column(Text)
    return_period: Mapped[int | None] = mapped_column(Integer)
    scheme_key: Mapped[str | None] = mapped_column(String(40))
    file_path: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(Text)
    year: Mapped[int | None] = mapped_column(Integer)
    producer: Mapped[str | None] = mapped_column(Text)
    admin_code: Mapped[str | None] = mapped_column(
        String(12), ForeignKey("admin_division.code", onupdate="CASCADE"), index=True
    )

    __table_args__ = (
        CheckConstraint(one_of("layer_kind", HAZARD_LAYER_KINDS), name="layer_kind"),
        CheckConstraint(one_of("data_type", DATA_TYPES), name="data_type"),
        CheckConstraint(
            "return_period IS NULL OR return_period > 0", name="return_period_positive"
        ),
    )


class AppUser(Common, Base):
    """A login with a role and the admin area it may see and change (``scope_code``)."""

    __tablename__ = "app_user"

    login: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    display_name: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(12), nullable=False)
    #: NULL means the whole country, allowed for admins only.
    scope_code: Mapped[str | None] = mapped_column(
        String(12), ForeignKey("admin_division.code", onupdate="CASCADE")
    )
    #: SHA-256 of the bearer token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(one_of("role", ROLES), name="role"),
        CheckConstraint("scope_code IS NOT NULL OR role = 'admin'", name="scope_required"),
        CheckConstraint(r"login ~ '^[A-Za-z0-9_.@\-]{2,64}$'", name="login"),
    )


class AuditLog(Base):
    """One row per write, by trigger in the same transaction (BAD_INPUTS G5–G7)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    table_name: Mapped[str] = mapped_column(Text, nullable=False)
    row_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(8), nullable=False)
    actor: Mapped[str | None] = mapped_column(Text)
    scope: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    #: For bulk jobs: how many rows the one audit row stands for.
    row_count: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint(one_of("action", ("INSERT", "UPDATE", "DELETE", "BULK")), name="action"),
        Index("ix_audit_log_row", "table_name", "row_id"),
        Index("ix_audit_log_at", "at"),
    )


class ImportBatch(Common, Base):
    """One import of one file: what was read, how, by whom, and what it did.

    The row is written before the import transaction and finished after it, so a failed
    import still leaves its report. ``file_sha256`` + target + scope make re-imports of
    the same file idempotent.
    """

    __tablename__ = "import_batch"

    target: Mapped[str] = mapped_column(String(32), nullable=False)
    file_name: Mapped[str] = mapped_column(Text, nullable=False)
    file_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    file_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    fmt: Mapped[str | None] = mapped_column(String(12))
    layer: Mapped[str | None] = mapped_column(Text)
    encoding: Mapped[str | None] = mapped_column(String(20))
    source_crs: Mapped[str | None] = mapped_column(String(12))
    crs_label: Mapped[str | None] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    status: Mapped[str] = mapped_column(String(12), nullable=False, server_default="pending")
    rows_read: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    rows_inserted: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    rows_updated: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    rows_rejected: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    rows_repaired: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    #: The first problems (row, column, reason), capped; the count is ``rows_rejected``.
    problems: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    notes: Mapped[list[str]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    timings: Mapped[dict[str, float]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_detail: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(Text)
    scope_code: Mapped[str | None] = mapped_column(String(12))
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(
            one_of("status", ("pending", "running", "succeeded", "failed", "checked")),
            name="status",
        ),
        CheckConstraint(r"file_sha256 ~ '^[0-9a-f]{64}$'", name="sha256"),
        Index("ix_import_batch_file", "target", "file_sha256", "scope_code"),
    )


#: Tables whose rows are stamped with ``admin_code``/``grid_code`` from their geometry.
LOCATED_TABLES: tuple[type[Base], ...] = (
    Building,
    Enterprise,
    SafetyHazard,
    GeohazardPoint,
    GeohazardZone,
    Shelter,
    EvacuationRoute,
    ForestPatch,
    FirePoint,
    Facility,
    BarrierLine,
    Warning,
)

#: Tables whose writes are audited row by row (bulk loads write one BULK row instead).
AUDITED_TABLES: tuple[str, ...] = (
    *(m.__tablename__ for m in LOCATED_TABLES),
    "admin_division",
    "grid",
    "person",
    "grid_assignment",
    "responsibility",
    "hazard_event",
    "classification_scheme",
    "classification_class",
    "hazard_layer",
    "app_user",
)


# ---------------------------------------------------------------------------
# Tiles (issue 4): the change log behind tile-cache invalidation (migration 0005)
# ---------------------------------------------------------------------------
class TileChange(Base):
    """One write statement on a mapped table and the bbox it touched (NULL bbox: all of it).

    Written by STATEMENT triggers (so bulk imports count too) and announced by
    ``NOTIFY gis_tile_change``; tile servers drop the cached tiles the bbox covers.
    """

    __tablename__ = "tile_change"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    table_name: Mapped[str] = mapped_column(Text, nullable=False)
    op: Mapped[str] = mapped_column(String(8), nullable=False)
    min_x: Mapped[float | None] = mapped_column(Float)
    min_y: Mapped[float | None] = mapped_column(Float)
    max_x: Mapped[float | None] = mapped_column(Float)
    max_y: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_tile_change_at", "at"),)


# ---------------------------------------------------------------------------
# Grid partitioning (issue 6): proposals, their units and grids
# ---------------------------------------------------------------------------
PROPOSAL_STATUSES = ("running", "ready", "failed", "committed", "discarded")


class GridProposal(Common, Base):
    """A proposed partition of one or more communities: nothing changes until it is committed."""

    __tablename__ = "grid_proposal"

    admin_code: Mapped[str] = mapped_column(String(12), nullable=False)
    community_codes: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    status: Mapped[str] = mapped_column(String(12), nullable=False, server_default="running")
    params: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    quality: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    error_detail: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(Text)
    scope_code: Mapped[str | None] = mapped_column(String(12))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    committed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(one_of("status", PROPOSAL_STATUSES), name="status"),
        Index("ix_grid_proposal_admin_code", "admin_code"),
    )


class GridProposalUnit(Common, Base):
    """An atom of a proposal: a building's cell inside a street block, or an empty block."""

    __tablename__ = "grid_proposal_unit"

    proposal_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("grid_proposal.id", ondelete="CASCADE"), nullable=False
    )
    community_code: Mapped[str] = mapped_column(String(12), nullable=False)
    idx: Mapped[int] = mapped_column(Integer, nullable=False)
    block: Mapped[int] = mapped_column(Integer, nullable=False)
    label: Mapped[int] = mapped_column(Integer, nullable=False)
    building_ids: Mapped[list[int]] = mapped_column(
        ARRAY(BigInteger), nullable=False, server_default=text("'{}'::bigint[]")
    )
    households: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    population: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    area_m2: Mapped[float] = mapped_column(Float, nullable=False)
    x: Mapped[float] = mapped_column(Float, nullable=False)
    y: Mapped[float] = mapped_column(Float, nullable=False)
    geom: Mapped[Any] = mapped_column(geometry("MULTIPOLYGON"), nullable=False)

    __table_args__ = (
        UniqueConstraint("proposal_id", "community_code", "idx"),
        Index("ix_grid_proposal_unit_label", "proposal_id", "community_code", "label"),
    )


class GridProposalGrid(Common, Base):
    """A proposed grid: dissolved units, its code, figures and shape quality."""

    __tablename__ = "grid_proposal_grid"

    proposal_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("grid_proposal.id", ondelete="CASCADE"), nullable=False
    )
    community_code: Mapped[str] = mapped_column(String(12), nullable=False)
    label: Mapped[int] = mapped_column(Integer, nullable=False)
    grid_code: Mapped[str] = mapped_column(String(15), nullable=False)
    kind: Mapped[str] = mapped_column(String(10), nullable=False, server_default="basic")
    households: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    population: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    area_m2: Mapped[float] = mapped_column(Float, nullable=False)
    polsby_popper: Mapped[float] = mapped_column(Float, nullable=False)
    pieces: Mapped[int] = mapped_column(Integer, nullable=False)
    geom: Mapped[Any] = mapped_column(geometry("MULTIPOLYGON"), nullable=False)

    __table_args__ = (
        UniqueConstraint("proposal_id", "community_code", "label"),
        CheckConstraint(r"grid_code ~ '^\d{15}$'", name="grid_code_15"),
    )


# ---------------------------------------------------------------------------
# 隐患 ledger workflow (单四制, migration 0008): columns added to the ledger tables,
# and the frozen monthly reports.
# ---------------------------------------------------------------------------
#: What a ledger event did (``escalate`` keeps the status; ``demo``/``import`` are synthetic).
HAZARD_ACTIONS = (
    "create",
    "assign",
    "start",
    "request_closeout",
    "close",
    "reject",
    "escalate",
    "import",
)
#: 挂牌督办 level.
SUPERVISION_LEVELS = ("province", "city", "county")

_hazard = Base.metadata.tables["safety_hazard"]
for _column in (
    #: Article of the applicable 判定标准 (e.g. "工贸企业重大事故隐患判定标准 第十一条(二)").
    Column("legal_basis", Text),
    #: 重大隐患 五落实: {"measures","funds","deadline","person","plan"} → bool.
    Column("five_in_place", JSONB),
    #: Photo files (stored names / URLs with their SHA-256), as given at creation.
    Column("photos", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    #: 挂牌督办 level when ``escalated``.
    Column("supervision_level", String(8)),
):
    _hazard.append_column(_column)
Index("ix_safety_hazard_found_at", _hazard.c.found_at)
_hazard.append_constraint(
    CheckConstraint(
        one_of("supervision_level", SUPERVISION_LEVELS, nullable=True), name="supervision_level"
    )
)

_event = Base.metadata.tables["hazard_event"]
for _column in (
    Column("action", String(20)),
    #: The actor's role at the time (the login is ``actor``).
    Column("actor_role", String(12)),
    #: What the step carried: deadline, organisation, measures, evidence, reason …
    Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
):
    _event.append_column(_column)
_event.append_constraint(
    CheckConstraint(one_of("action", HAZARD_ACTIONS, nullable=True), name="action")
)
Index("ix_hazard_event_to_status_at", _event.c.to_status, _event.c.at)
Index("ix_hazard_event_action", _event.c.action)


class HazardMonthlyReport(Common, Base):
    """A published month (每月一统计、一排名、一通报): frozen, later edits never change it."""

    __tablename__ = "hazard_monthly_report"

    month: Mapped[dt.date] = mapped_column(Date, nullable=False)
    #: The admin unit the report covers (its counties are ranked).
    root_code: Mapped[str] = mapped_column(String(12), nullable=False)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    published_by: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    __table_args__ = (
        UniqueConstraint("month", "root_code"),
        CheckConstraint("extract(day FROM month) = 1", name="month_first_day"),
    )


# ------------------------------------------------------- password login (migration 0010)
class UserPassword(Base):
    """A user's scrypt password hash, outside ``app_user`` so the audit log never copies it."""

    __tablename__ = "user_password"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )
    hash: Mapped[str] = mapped_column(Text, nullable=False)
    changed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class AuthToken(Base):
    """A token issued by ``POST /auth/login`` (SHA-256 only), valid until ``expires_at``."""

    __tablename__ = "auth_token"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class AuthFailure(Base):
    """A failed login, counted per login and per client address by the throttle (E10)."""

    __tablename__ = "auth_failure"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    login: Mapped[str] = mapped_column(String(64), nullable=False)
    address: Mapped[str] = mapped_column(String(64), nullable=False)

    __table_args__ = (
        Index("ix_auth_failure_login_at", "login", "at"),
        Index("ix_auth_failure_address_at", "address", "at"),
    )


# ---------------------------------------------------------------------------
# Hazard overlays and impact analysis (issue 9, migration 0011)
# ---------------------------------------------------------------------------
_hazard_layer = Base.metadata.tables["hazard_layer"]
for _column in (
    #: Vector layers: the published tile layer (``layers/*.yaml``) that draws them.
    Column("tile_layer", String(64)),
    #: Vector layers: the feature property holding the class key of the layer's scheme.
    Column("class_property", String(64)),
):
    _hazard_layer.append_column(_column)


class _OfLayer:
    """A row belonging to one hazard layer (deleted with it)."""

    layer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("hazard_layer.id", ondelete="CASCADE"), nullable=False
    )


class HazardRaster(_OfLayer, Common, Base):
    """The Cloud-Optimised GeoTIFF of a raster hazard layer, kept in the database.

    Servers write it once into their raster folder under its SHA-256 name and read it there
    with rio-tiler; the database stays the one store of truth.
    """

    __tablename__ = "hazard_raster"

    cog: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    #: The raster's own CRS (``EPSG:4547`` or WKT): any CRS is kept as imported.
    crs: Mapped[str] = mapped_column(Text, nullable=False)
    dtype: Mapped[str] = mapped_column(String(12), nullable=False)
    nodata: Mapped[float | None] = mapped_column(Float)
    res_x: Mapped[float] = mapped_column(Float, nullable=False)
    res_y: Mapped[float] = mapped_column(Float, nullable=False)
    #: Bounds in lon/lat (CGCS2000).
    west: Mapped[float] = mapped_column(Float, nullable=False)
    south: Mapped[float] = mapped_column(Float, nullable=False)
    east: Mapped[float] = mapped_column(Float, nullable=False)
    north: Mapped[float] = mapped_column(Float, nullable=False)
    min_value: Mapped[float | None] = mapped_column(Float)
    max_value: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        CheckConstraint(r"sha256 ~ '^[0-9a-f]{64}$'", name="sha256"),
        CheckConstraint("width > 0 AND height > 0", name="size"),
        UniqueConstraint("layer_id"),
    )


class HazardZone(_OfLayer, Common, Base):
    """A polygon of a vector hazard layer (flood zone, waterlogging area …) with its class."""

    __tablename__ = "hazard_zone"

    class_key: Mapped[str | None] = mapped_column(String(40))
    value: Mapped[float | None] = mapped_column(Float)
    name: Mapped[str | None] = mapped_column(Text)
    admin_code: Mapped[str | None] = mapped_column(String(12))
    geom: Mapped[Any] = mapped_column(geometry("MULTIPOLYGON"), nullable=False)

    __table_args__ = (
        CheckConstraint(valid_geometry("geom"), name="geom_valid"),
        Index("ix_hazard_zone_layer_id", "layer_id"),
        Index("ix_hazard_zone_admin_code", "admin_code"),
    )


class HazardFootprint(_OfLayer, Common, Base):
    """A raster thresholded (``value >= min_value`` [and ``< max_value``]) and polygonised once."""

    __tablename__ = "hazard_footprint"

    raster_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    min_value: Mapped[float] = mapped_column(Float, nullable=False)
    max_value: Mapped[float | None] = mapped_column(Float)
    area_km2: Mapped[float] = mapped_column(Float, nullable=False)
    geom: Mapped[Any] = mapped_column(geometry("MULTIPOLYGON"), nullable=False)

    __table_args__ = (
        CheckConstraint(valid_geometry("geom"), name="geom_valid"),
        Index("ix_hazard_footprint_key", "layer_id", "raster_sha256", "min_value", "max_value"),
    )


# ---------------------------------------------------------------------------
# Grid partitioning, migration 0012: crossings over hard barriers, special grids (专属网格)
# ---------------------------------------------------------------------------
#: What joins the two sides of a river, rail line or major road for grid adjacency.
CROSSING_KINDS = ("bridge", "underpass", "ford", "crossing")


class BarrierCrossing(Common, Base):
    """桥梁/通道: where a hard barrier may be crossed (grids may span it only there)."""

    __tablename__ = "barrier_crossing"

    kind: Mapped[str] = mapped_column(String(12), nullable=False)
    name: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(geometry("POINT"), nullable=False)

    __table_args__ = (
        CheckConstraint(one_of("kind", CROSSING_KINDS), name="kind"),
        CheckConstraint(valid_geometry("geom"), name="geom_valid"),
    )


#: The features (``facility:12``, ``enterprise:7``) a proposed 专属网格 was pinned for.
for _table in ("grid_proposal_unit", "grid_proposal_grid"):
    Base.metadata.tables[_table].append_column(
        Column("special", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]"))
    )


# ---------------------------------------------------------------------------
# Query speed, migration 0018: metre questions on the small point/zone tables of locate
# ---------------------------------------------------------------------------
Index(
    "ix_shelter_geography",
    text("(geom::geography)"),
    _table=Base.metadata.tables["shelter"],
    postgresql_using="gist",
)
Index(
    "ix_shelter_open_geography",
    text("(geom::geography)"),
    _table=Base.metadata.tables["shelter"],
    postgresql_using="gist",
    postgresql_where=text("status IN ('open', 'opening') AND capacity > current_occupancy"),
)
Index(
    "ix_geohazard_point_geography",
    text("(geom::geography)"),
    _table=Base.metadata.tables["geohazard_point"],
    postgresql_using="gist",
)
Index(
    "ix_geohazard_zone_geom_spgist",
    Base.metadata.tables["geohazard_zone"].c.geom,
    postgresql_using="spgist",
)
