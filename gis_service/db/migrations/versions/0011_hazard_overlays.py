"""Hazard overlays: raster bytes, vector hazard zones, cached raster footprints, schemes.

- ``hazard_layer``: ``tile_layer`` (the published vector tile layer that draws a vector
  hazard layer) and ``class_property`` (its feature property holding the class key).
- ``hazard_raster``: the Cloud-Optimised GeoTIFF of a raster layer, in the database (the one
  store of truth) with its grid, CRS, nodata and lon/lat bounds; servers materialise it once
  into their raster folder under its SHA-256 name.
- ``hazard_zone``: polygons of vector hazard layers other than 地质灾害风险区 (flood zones …).
- ``hazard_footprint``: a raster thresholded and polygonised once, reused by impact runs.
- Seeds: ``flood_depth`` (淹没水深) and ``landslide_susceptibility`` (滑坡易发性) schemes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("hazard_raster", "hazard_zone", "hazard_footprint")

# key, title_zh, title_en, basis, classes [(key, zh, en, colour, min, max)] ascending
SCHEMES = (
    (
        "flood_depth",
        "淹没水深分级",
        "Flood depth",
        "洪水风险图编制导则 SL 483-2017（分级档位各地有别，待核）",
        [
            ("d005", "0.05–0.5 米", "0.05-0.5 m", "#c6dbef", 0.05, 0.5),
            ("d05", "0.5–1.0 米", "0.5-1.0 m", "#9ecae1", 0.5, 1.0),
            ("d10", "1.0–2.0 米", "1.0-2.0 m", "#4292c6", 1.0, 2.0),
            ("d20", "2.0–3.0 米", "2.0-3.0 m", "#2171b5", 2.0, 3.0),
            ("d30", "3.0 米以上", "over 3 m", "#08306b", 3.0, None),
        ],
    ),
    (
        "landslide_susceptibility",
        "滑坡易发性分区",
        "Landslide susceptibility",
        "地质灾害风险调查评价技术要求（1:50000）（易发性指数分档，待核）",
        [
            ("low", "低易发", "Low", "#2e9e44", 0.0, 0.25),
            ("medium", "中易发", "Medium", "#ffd700", 0.25, 0.5),
            ("high", "高易发", "High", "#ff8c00", 0.5, 0.75),
            ("very_high", "极高易发", "Very high", "#e60000", 0.75, None),
        ],
    ),
)


def _common() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("row_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
    ]


def _geom() -> sa.Column[object]:
    return sa.Column(
        "geom",
        Geometry(
            geometry_type="MULTIPOLYGON",
            srid=4490,
            dimension=2,
            spatial_index=False,
            from_text="ST_GeomFromEWKT",
            name="geometry",
        ),
        nullable=False,
    )


def _layer_fk(table: str) -> list[object]:
    return [
        sa.Column("layer_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["layer_id"],
            ["hazard_layer.id"],
            name=op.f(f"fk_{table}_layer_id_hazard_layer"),
            ondelete="CASCADE",
        ),
    ]


def _valid(table: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(
        "(ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180"
        " AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90)",
        name=op.f(f"ck_{table}_geom_valid"),
    )


def _seed_schemes() -> None:
    conn = op.get_bind()
    for key, title_zh, title_en, basis, classes in SCHEMES:
        sid = conn.execute(
            sa.text(
                "INSERT INTO classification_scheme (key, version, title_zh, title_en, basis, source)"
                " VALUES (:key, 1, :zh, :en, :basis, 'seed') RETURNING id"
            ),
            {"key": key, "zh": title_zh, "en": title_en, "basis": basis},
        ).scalar_one()
        for ord_, (k, zh, en, color, lo, hi) in enumerate(classes, start=1):
            conn.execute(
                sa.text(
                    "INSERT INTO classification_class"
                    " (scheme_id, key, zh_name, en_name, ord, color, min_value, max_value, source)"
                    " VALUES (:sid, :key, :zh, :en, :ord, :color, :lo, :hi, 'seed')"
                ),
                {
                    "sid": sid,
                    "key": k,
                    "zh": zh,
                    "en": en,
                    "ord": ord_,
                    "color": color,
                    "lo": lo,
                    "hi": hi,
                },
            )


def upgrade() -> None:
    """Add the raster, zone and footprint tables and the two hazard schemes."""
    op.add_column("hazard_layer", sa.Column("tile_layer", sa.String(length=64), nullable=True))
    op.add_column("hazard_layer", sa.Column("class_property", sa.String(length=64), nullable=True))

    op.create_table(
        "hazard_raster",
        *_layer_fk("hazard_raster"),
        sa.Column("cog", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("crs", sa.Text(), nullable=False),
        sa.Column("dtype", sa.String(length=12), nullable=False),
        sa.Column("nodata", sa.Float(), nullable=True),
        sa.Column("res_x", sa.Float(), nullable=False),
        sa.Column("res_y", sa.Float(), nullable=False),
        sa.Column("west", sa.Float(), nullable=False),
        sa.Column("south", sa.Float(), nullable=False),
        sa.Column("east", sa.Float(), nullable=False),
        sa.Column("north", sa.Float(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=True),
        sa.Column("max_value", sa.Float(), nullable=True),
        *_common(),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_hazard_raster_sha256")),
        sa.CheckConstraint("width > 0 AND height > 0", name=op.f("ck_hazard_raster_size")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hazard_raster")),
        sa.UniqueConstraint("layer_id", name=op.f("uq_hazard_raster_layer_id")),
    )
    op.create_table(
        "hazard_zone",
        *_layer_fk("hazard_zone"),
        sa.Column("class_key", sa.String(length=40), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
        _geom(),
        *_common(),
        _valid("hazard_zone"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hazard_zone")),
    )
    op.create_index("ix_hazard_zone_layer_id", "hazard_zone", ["layer_id"], unique=False)
    op.create_index("ix_hazard_zone_admin_code", "hazard_zone", ["admin_code"], unique=False)
    op.create_table(
        "hazard_footprint",
        *_layer_fk("hazard_footprint"),
        sa.Column("raster_sha256", sa.String(length=64), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=False),
        sa.Column("max_value", sa.Float(), nullable=True),
        sa.Column("area_km2", sa.Float(), nullable=False),
        _geom(),
        *_common(),
        _valid("hazard_footprint"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hazard_footprint")),
    )
    op.create_index(
        "ix_hazard_footprint_key",
        "hazard_footprint",
        ["layer_id", "raster_sha256", "min_value", "max_value"],
        unique=False,
    )
    for table in ("hazard_zone", "hazard_footprint"):
        op.create_geospatial_index(
            f"idx_{table}_geom", table, ["geom"], unique=False, postgresql_using="gist"
        )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_touch BEFORE UPDATE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION gis_touch()"
        )
    _seed_schemes()


def downgrade() -> None:
    """Drop the three tables, the two columns and the two seeded schemes."""
    op.get_bind().execute(
        sa.text("DELETE FROM classification_scheme WHERE key = ANY(:keys) AND version = 1"),
        {"keys": [s[0] for s in SCHEMES]},
    )
    for table in ("hazard_zone", "hazard_footprint"):
        op.drop_geospatial_index(
            f"idx_{table}_geom", table_name=table, postgresql_using="gist", column_name="geom"
        )
    op.drop_index("ix_hazard_footprint_key", table_name="hazard_footprint")
    op.drop_index("ix_hazard_zone_admin_code", table_name="hazard_zone")
    op.drop_index("ix_hazard_zone_layer_id", table_name="hazard_zone")
    for table in reversed(TABLES):
        op.drop_table(table)
    op.drop_column("hazard_layer", "class_property")
    op.drop_column("hazard_layer", "tile_layer")
