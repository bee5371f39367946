"""Domain schema of DESIGN §4: tables, indexes, stamping/audit/version triggers.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 13:00:43.251461
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

from gis_service.db.sqlfiles import read_sql

# Frozen here (not imported from models) so this revision never changes meaning.
LOCATED = (
    "building",
    "enterprise",
    "safety_hazard",
    "geohazard_point",
    "geohazard_zone",
    "shelter",
    "evacuation_route",
    "forest_patch",
    "fire_point",
    "facility",
    "barrier_line",
    "warning",
)
AUDITED = (
    *LOCATED,
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
TOUCHED = (*AUDITED,)


def _triggers() -> None:
    op.execute(read_sql("functions.sql"))
    op.execute(
        "CREATE TRIGGER admin_division_derive BEFORE INSERT OR UPDATE OF code, parent_code, boundary"
        " ON admin_division FOR EACH ROW EXECUTE FUNCTION gis_admin_division_derive()"
    )
    for table in TOUCHED:
        op.execute(
            f"CREATE TRIGGER {table}_touch BEFORE UPDATE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION gis_touch()"
        )
    for table in LOCATED:
        op.execute(
            f"CREATE TRIGGER {table}_stamp BEFORE INSERT OR UPDATE OF geom ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION gis_stamp()"
        )
    for table in AUDITED:
        op.execute(
            f"CREATE TRIGGER {table}_audit AFTER INSERT OR UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION gis_audit()"
        )
    op.execute(
        "CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON audit_log"
        " FOR EACH ROW EXECUTE FUNCTION gis_audit_immutable()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log"
        " FOR EACH STATEMENT EXECUTE FUNCTION gis_audit_immutable()"
    )


revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_geospatial_table(
        "admin_division",
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("level", sa.String(length=12), nullable=False),
        sa.Column("parent_code", sa.String(length=12), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("short_name", sa.Text(), nullable=True),
        sa.Column("urban_rural_code", sa.String(length=3), nullable=True),
        sa.Column(
            "ancestors",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column(
            "boundary",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column(
            "label_point",
            Geometry(
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("boundary_source", sa.Text(), nullable=True),
        sa.Column("boundary_year", sa.Integer(), nullable=True),
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
        sa.CheckConstraint(
            "(level IN ('province', 'prefecture', 'county') AND code ~ '^\\d{6}$') OR (level = 'township' AND code ~ '^\\d{9}$') OR (level = 'village' AND code ~ '^\\d{12}$')",
            name=op.f("ck_admin_division_code_matches_level"),
        ),
        sa.CheckConstraint(
            "(urban_rural_code IS NULL OR urban_rural_code IN ('111', '112', '121', '122', '123', '210', '220'))",
            name=op.f("ck_admin_division_urban_rural_code"),
        ),
        sa.CheckConstraint(
            "level IN ('province', 'prefecture', 'county', 'township', 'village')",
            name=op.f("ck_admin_division_level"),
        ),
        sa.CheckConstraint(
            "(boundary IS NULL OR (ST_IsValid(boundary) AND NOT ST_IsEmpty(boundary) AND ST_XMin(boundary) >= -180 AND ST_XMax(boundary) <= 180 AND ST_YMin(boundary) >= -90 AND ST_YMax(boundary) <= 90))",
            name=op.f("ck_admin_division_boundary_valid"),
        ),
        sa.CheckConstraint(
            "parent_code IS NULL OR parent_code <> code",
            name=op.f("ck_admin_division_not_own_parent"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_code"],
            ["admin_division.code"],
            name=op.f("fk_admin_division_parent_code_admin_division"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_division")),
        sa.UniqueConstraint("code", name=op.f("uq_admin_division_code")),
    )
    op.create_geospatial_index(
        "idx_admin_division_boundary",
        "admin_division",
        ["boundary"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_index(
        "idx_admin_division_label_point",
        "admin_division",
        ["label_point"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        "ix_admin_division_ancestors",
        "admin_division",
        ["ancestors"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index("ix_admin_division_level", "admin_division", ["level"], unique=False)
    op.create_index(
        op.f("ix_admin_division_parent_code"), "admin_division", ["parent_code"], unique=False
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "action IN ('INSERT', 'UPDATE', 'DELETE', 'BULK')", name=op.f("ck_audit_log_action")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    op.create_index("ix_audit_log_row", "audit_log", ["table_name", "row_id"], unique=False)
    op.create_geospatial_table(
        "barrier_line",
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTILINESTRING",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("source_crs", sa.String(length=12), nullable=True),
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
        sa.CheckConstraint(
            "(source_crs IS NULL OR source_crs IN ('CGCS2000', 'WGS84', 'GCJ02', 'BD09', 'XIAN80', 'BEIJING54', 'GK', 'LOCAL'))",
            name=op.f("ck_barrier_line_source_crs"),
        ),
        sa.CheckConstraint(
            "admin_code IS NULL OR admin_code ~ '^\\d{12}$'",
            name=op.f("ck_barrier_line_admin_code_village"),
        ),
        sa.CheckConstraint(
            "grid_code IS NULL OR grid_code ~ '^\\d{15}$'",
            name=op.f("ck_barrier_line_grid_code_15"),
        ),
        sa.CheckConstraint(
            "kind IN ('road_major', 'road_minor', 'river', 'rail', 'wall')",
            name=op.f("ck_barrier_line_kind"),
        ),
        sa.CheckConstraint(
            "(ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90)",
            name=op.f("ck_barrier_line_geom_valid"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_barrier_line")),
    )
    op.create_geospatial_index(
        "idx_barrier_line_geom",
        "barrier_line",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_barrier_line_admin_code"), "barrier_line", ["admin_code"], unique=False
    )
    op.create_index(op.f("ix_barrier_line_grid_code"), "barrier_line", ["grid_code"], unique=False)
    op.create_geospatial_table(
        "building",
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("households", sa.Integer(), server_default="0", nullable=False),
        sa.Column("population", sa.Integer(), server_default="0", nullable=False),
        sa.Column("structure", sa.String(length=20), nullable=True),
        sa.Column("floors", sa.Integer(), nullable=True),
        sa.Column("use", sa.String(length=12), nullable=True),
        sa.Column("year_band", sa.String(length=8), nullable=True),
        sa.Column("urban_rural", sa.String(length=5), nullable=True),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("source_crs", sa.String(length=12), nullable=True),
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
        sa.CheckConstraint(
            "(source_crs IS NULL OR source_crs IN ('CGCS2000', 'WGS84', 'GCJ02', 'BD09', 'XIAN80', 'BEIJING54', 'GK', 'LOCAL'))",
            name=op.f("ck_building_source_crs"),
        ),
        sa.CheckConstraint(
            "(structure IS NULL OR structure IN ('masonry', 'reinforced_concrete', 'steel', 'wood', 'other'))",
            name=op.f("ck_building_structure"),
        ),
        sa.CheckConstraint(
            "(urban_rural IS NULL OR urban_rural IN ('urban', 'rural'))",
            name=op.f("ck_building_urban_rural"),
        ),
        sa.CheckConstraint(
            "(use IS NULL OR use IN ('residential', 'commercial', 'industrial', 'public', 'mixed', 'other'))",
            name=op.f("ck_building_use"),
        ),
        sa.CheckConstraint(
            "(year_band IS NULL OR year_band IN ('pre1980', '1980s', '1990s', '2000s', '2010s', '2020s'))",
            name=op.f("ck_building_year_band"),
        ),
        sa.CheckConstraint(
            "admin_code IS NULL OR admin_code ~ '^\\d{12}$'",
            name=op.f("ck_building_admin_code_village"),
        ),
        sa.CheckConstraint(
            "grid_code IS NULL OR grid_code ~ '^\\d{15}$'", name=op.f("ck_building_grid_code_15")
        ),
        sa.CheckConstraint(
            "(ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90)",
            name=op.f("ck_building_geom_valid"),
        ),
        sa.CheckConstraint(
            "floors IS NULL OR floors BETWEEN -10 AND 200", name=op.f("ck_building_floors")
        ),
        sa.CheckConstraint(
            "households >= 0 AND population >= 0", name=op.f("ck_building_counts_nonneg")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_building")),
    )
    op.create_geospatial_index(
        "idx_building_geom",
        "building",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_building_admin_code"), "building", ["admin_code"], unique=False)
    op.create_index(op.f("ix_building_grid_code"), "building", ["grid_code"], unique=False)
    op.create_table(
        "classification_scheme",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("title_zh", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=False),
        sa.Column("region", sa.Text(), server_default="nation", nullable=False),
        sa.Column("basis", sa.Text(), nullable=True),
        sa.Column("effective_from", sa.Date(), nullable=True),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_classification_scheme")),
        sa.UniqueConstraint("key", "version", name="uq_scheme_key_version"),
    )
    op.create_geospatial_table(
        "enterprise",
        sa.Column("uscc", sa.String(length=18), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("sector", sa.String(length=16), nullable=False),
        sa.Column("sub_sector", sa.Text(), nullable=True),
        sa.Column(
            "special_flags",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column("risk_level", sa.String(length=6), nullable=False),
        sa.Column("assessed_at", sa.Date(), nullable=True),
        sa.Column("employees", sa.Integer(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("source_crs", sa.String(length=12), nullable=True),
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
        sa.CheckConstraint(
            "(source_crs IS NULL OR source_crs IN ('CGCS2000', 'WGS84', 'GCJ02', 'BD09', 'XIAN80', 'BEIJING54', 'GK', 'LOCAL'))",
            name=op.f("ck_enterprise_source_crs"),
        ),
        sa.CheckConstraint(
            "admin_code IS NULL OR admin_code ~ '^\\d{12}$'",
            name=op.f("ck_enterprise_admin_code_village"),
        ),
        sa.CheckConstraint(
            "grid_code IS NULL OR grid_code ~ '^\\d{15}$'", name=op.f("ck_enterprise_grid_code_15")
        ),
        sa.CheckConstraint(
            "risk_level IN ('red', 'orange', 'yellow', 'blue')",
            name=op.f("ck_enterprise_risk_level"),
        ),
        sa.CheckConstraint(
            "sector IN ('hazchem', 'fireworks', 'non_coal_mine', 'coal_mine', 'industry_trade', 'other')",
            name=op.f("ck_enterprise_sector"),
        ),
        sa.CheckConstraint(
            "special_flags <@ ARRAY['dust_explosion', 'ammonia_refrigeration', 'confined_space', 'hazardous_process', 'major_hazard_source', 'in_chemical_park']::text[]",
            name=op.f("ck_enterprise_special_flags"),
        ),
        sa.CheckConstraint(
            "uscc IS NULL OR uscc ~ '^[0-9A-Z]{18}$'", name=op.f("ck_enterprise_uscc")
        ),
        sa.CheckConstraint(
            "(ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90)",
            name=op.f("ck_enterprise_geom_valid"),
        ),
        sa.CheckConstraint(
            "employees IS NULL OR employees >= 0", name=op.f("ck_enterprise_employees")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enterprise")),
        sa.UniqueConstraint("uscc", name=op.f("uq_enterprise_uscc")),
    )
    op.create_geospatial_index(
        "idx_enterprise_geom",
        "enterprise",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_enterprise_admin_code"), "enterprise", ["admin_code"], unique=False)
    op.create_index(op.f("ix_enterprise_grid_code"), "enterprise", ["grid_code"], unique=False)
    op.create_index("ix_enterprise_risk_level", "enterprise", ["risk_level"], unique=False)
    op.create_geospatial_table(
        "facility",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("people", sa.Integer(), nullable=True),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("source_crs", sa.String(length=12), nullable=True),
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
        sa.CheckConstraint(
            "(source_crs IS NULL OR source_crs IN ('CGCS2000', 'WGS84', 'GCJ02', 'BD09', 'XIAN80', 'BEIJING54', 'GK', 'LOCAL'))",
            name=op.f("ck_facility_source_crs"),
        ),
        sa.CheckConstraint(
            "admin_code IS NULL OR admin_code ~ '^\\d{12}$'",
            name=op.f("ck_facility_admin_code_village"),
        ),
        sa.CheckConstraint(
            "grid_code IS NULL OR grid_code ~ '^\\d{15}$'", name=op.f("ck_facility_grid_code_15")
        ),
        sa.CheckConstraint(
            "kind IN ('school', 'hospital', 'welfare_home', 'culture_venue', 'scenic_site', 'hotel', 'stadium', 'religious_site', 'market', 'gas_station', 'depot', 'other')",
            name=op.f("ck_facility_kind"),
        ),
        sa.CheckConstraint(
            "(ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90)",
            name=op.f("ck_facility_geom_valid"),
        ),
        sa.CheckConstraint("people IS NULL OR people >= 0", name=op.f("ck_facility_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_facility")),
    )
    op.create_geospatial_index(
        "idx_facility_geom",
        "facility",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_facility_admin_code"), "facility", ["admin_code"], unique=False)
    op.create_index(op.f("ix_facility_grid_code"), "facility", ["grid_code"], unique=False)
    op.create_index("ix_facility_kind", "facility", ["kind"], unique=False)
    op.create_geospatial_table(
        "forest_patch",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("forest_type", sa.Text(), nullable=True),
        sa.Column("fuel_load", sa.Float(), nullable=True),
        sa.Column("area_ha", sa.Float(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("source_crs", sa.String(length=12), nullable=True),
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
        sa.CheckConstraint(
            "(source_crs IS NULL OR source_crs IN ('CGCS2000', 'WGS84', 'GCJ02', 'BD09', 'XIAN80', 'BEIJING54', 'GK', 'LOCAL'))",
            name=op.f("ck_forest_patch_source_crs"),
        ),
        sa.CheckConstraint(
            "admin_code IS NULL OR admin_code ~ '^\\d{12}$'",
            name=op.f("ck_forest_patch_admin_code_village"),
        ),
        sa.CheckConstraint(
            "grid_code IS NULL OR grid_code ~ '^\\d{15}$'",
            name=op.f("ck_forest_patch_grid_code_15"),
        ),
        sa.CheckConstraint(
            "(ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90)",
            name=op.f("ck_forest_patch_geom_valid"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forest_patch")),
        sa.UniqueConstraint("code", name=op.f("uq_forest_patch_code")),
    )
    op.create_geospatial_index(
        "idx_forest_patch_geom",
        "forest_patch",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_forest_patch_admin_code"), "forest_patch", ["admin_code"], unique=False
    )
    op.create_index(op.f("ix_forest_patch_grid_code"), "forest_patch", ["grid_code"], unique=False)
    op.create_geospatial_table(
        "geohazard_point",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("scale", sa.String(length=8), nullable=True),
        sa.Column("danger_grade", sa.String(length=3), nullable=True),
        sa.Column("stability", sa.String(length=20), nullable=True),
        sa.Column("threatened_households", sa.Integer(), server_default="0", nullable=False),
        sa.Column("threatened_people", sa.Integer(), server_default="0", nullable=False),
        sa.Column("threatened_property", sa.Float(), nullable=True),
        sa.Column("monitoring", sa.Text(), nullable=True),
        sa.Column("two_cards_issued", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("closed", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("source_crs", sa.String(length=12), nullable=True),
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
        sa.CheckConstraint(
            "(danger_grade IS NULL OR danger_grade IN ('I', 'II', 'III', 'IV'))",
            name=op.f("ck_geohazard_point_danger_grade"),
        ),
        sa.CheckConstraint(
            "(scale IS NULL OR scale IN ('giant', 'large', 'medium', 'small'))",
            name=op.f("ck_geohazard_point_scale"),
        ),
        sa.CheckConstraint(
            "(source_crs IS NULL OR source_crs IN ('CGCS2000', 'WGS84', 'GCJ02', 'BD09', 'XIAN80', 'BEIJING54', 'GK', 'LOCAL'))",
            name=op.f("ck_geohazard_point_source_crs"),
        ),
        sa.CheckConstraint(
            "(stability IS NULL OR stability IN ('stable', 'basically_stable', 'unstable'))",
            name=op.f("ck_geohazard_point_stability"),
        ),
        sa.CheckConstraint(
            "admin_code IS NULL OR admin_code ~ '^\\d{12}$'",
            name=op.f("ck_geohazard_point_admin_code_village"),
        ),
        sa.CheckConstraint(
            "grid_code IS NULL OR grid_code ~ '^\\d{15}$'",
            name=op.f("ck_geohazard_point_grid_code_15"),
        ),
        sa.CheckConstraint(
            "kind IN ('landslide', 'collapse', 'debris_flow', 'ground_collapse', 'ground_fissure', 'subsidence')",
            name=op.f("ck_geohazard_point_kind"),
        ),
        sa.CheckConstraint(
            "(ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90)",
            name=op.f("ck_geohazard_point_geom_valid"),
        ),
        sa.CheckConstraint(
            "threatened_households >= 0 AND threatened_people >= 0",
            name=op.f("ck_geohazard_point_counts_nonneg"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_geohazard_point")),
        sa.UniqueConstraint("code", name=op.f("uq_geohazard_point_code")),
    )
    op.create_geospatial_index(
        "idx_geohazard_point_geom",
        "geohazard_point",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_geohazard_point_admin_code"), "geohazard_point", ["admin_code"], unique=False
    )
    op.create_index(
        op.f("ix_geohazard_point_grid_code"), "geohazard_point", ["grid_code"], unique=False
    )
    op.create_geospatial_table(
        "geohazard_zone",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("risk_level", sa.String(length=10), nullable=False),
        sa.Column("households", sa.Integer(), server_default="0", nullable=False),
        sa.Column("people", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("source_crs", sa.String(length=12), nullable=True),
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
        sa.CheckConstraint(
            "(source_crs IS NULL OR source_crs IN ('CGCS2000', 'WGS84', 'GCJ02', 'BD09', 'XIAN80', 'BEIJING54', 'GK', 'LOCAL'))",
            name=op.f("ck_geohazard_zone_source_crs"),
        ),
        sa.CheckConstraint(
            "admin_code IS NULL OR admin_code ~ '^\\d{12}$'",
            name=op.f("ck_geohazard_zone_admin_code_village"),
        ),
        sa.CheckConstraint(
            "grid_code IS NULL OR grid_code ~ '^\\d{15}$'",
            name=op.f("ck_geohazard_zone_grid_code_15"),
        ),
        sa.CheckConstraint(
            "risk_level IN ('very_high', 'high', 'medium', 'low')",
            name=op.f("ck_geohazard_zone_risk_level"),
        ),
        sa.CheckConstraint(
            "(ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90)",
            name=op.f("ck_geohazard_zone_geom_valid"),
        ),
        sa.CheckConstraint(
            "households >= 0 AND people >= 0", name=op.f("ck_geohazard_zone_counts_nonneg")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_geohazard_zone")),
        sa.UniqueConstraint("code", name=op.f("uq_geohazard_zone_code")),
    )
    op.create_geospatial_index(
        "idx_geohazard_zone_geom",
        "geohazard_zone",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_geohazard_zone_admin_code"), "geohazard_zone", ["admin_code"], unique=False
    )
    op.create_index(
        op.f("ix_geohazard_zone_grid_code"), "geohazard_zone", ["grid_code"], unique=False
    )
    op.create_geospatial_table(
        "shelter",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "site",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("grade", sa.String(length=10), nullable=False),
        sa.Column("space_type", sa.String(length=8), nullable=True),
        sa.Column("duration_class", sa.String(length=10), nullable=True),
        sa.Column("capacity", sa.Integer(), server_default="0", nullable=False),
        sa.Column("effective_area", sa.Float(), nullable=True),
        sa.Column(
            "hazard_types",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=8), server_default="closed", nullable=False),
        sa.Column("current_occupancy", sa.Integer(), server_default="0", nullable=False),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("source_crs", sa.String(length=12), nullable=True),
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
        sa.CheckConstraint(
            "(duration_class IS NULL OR duration_class IN ('emergency', 'short', 'medium', 'long'))",
            name=op.f("ck_shelter_duration_class"),
        ),
        sa.CheckConstraint(
            "(source_crs IS NULL OR source_crs IN ('CGCS2000', 'WGS84', 'GCJ02', 'BD09', 'XIAN80', 'BEIJING54', 'GK', 'LOCAL'))",
            name=op.f("ck_shelter_source_crs"),
        ),
        sa.CheckConstraint(
            "(space_type IS NULL OR space_type IN ('indoor', 'outdoor'))",
            name=op.f("ck_shelter_space_type"),
        ),
        sa.CheckConstraint(
            "admin_code IS NULL OR admin_code ~ '^\\d{12}$'",
            name=op.f("ck_shelter_admin_code_village"),
        ),
        sa.CheckConstraint(
            "grade IN ('province', 'city', 'county', 'township', 'village')",
            name=op.f("ck_shelter_grade"),
        ),
        sa.CheckConstraint(
            "grid_code IS NULL OR grid_code ~ '^\\d{15}$'", name=op.f("ck_shelter_grid_code_15")
        ),
        sa.CheckConstraint(
            "hazard_types <@ ARRAY['earthquake', 'flood', 'typhoon', 'geohazard', 'fire', 'hazchem', 'public_health']::text[]",
            name=op.f("ck_shelter_hazard_types"),
        ),
        sa.CheckConstraint(
            "status IN ('closed', 'opening', 'open', 'full')", name=op.f("ck_shelter_status")
        ),
        sa.CheckConstraint(
            "(ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90)",
            name=op.f("ck_shelter_geom_valid"),
        ),
        sa.CheckConstraint(
            "(site IS NULL OR (ST_IsValid(site) AND NOT ST_IsEmpty(site) AND ST_XMin(site) >= -180 AND ST_XMax(site) <= 180 AND ST_YMin(site) >= -90 AND ST_YMax(site) <= 90))",
            name=op.f("ck_shelter_site_valid"),
        ),
        sa.CheckConstraint(
            "capacity >= 0 AND current_occupancy >= 0", name=op.f("ck_shelter_counts_nonneg")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shelter")),
    )
    op.create_geospatial_index(
        "idx_shelter_geom",
        "shelter",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_index(
        "idx_shelter_site",
        "shelter",
        ["site"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_shelter_admin_code"), "shelter", ["admin_code"], unique=False)
    op.create_index(op.f("ix_shelter_grid_code"), "shelter", ["grid_code"], unique=False)
    op.create_geospatial_table(
        "warning",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("source_kind", sa.String(length=20), server_default="other", nullable=False),
        sa.Column("level", sa.String(length=6), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column(
            "admin_codes",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column(
            "issued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("source_crs", sa.String(length=12), nullable=True),
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
        sa.CheckConstraint(
            "(source_crs IS NULL OR source_crs IN ('CGCS2000', 'WGS84', 'GCJ02', 'BD09', 'XIAN80', 'BEIJING54', 'GK', 'LOCAL'))",
            name=op.f("ck_warning_source_crs"),
        ),
        sa.CheckConstraint(
            "admin_code IS NULL OR admin_code ~ '^\\d{12}$'",
            name=op.f("ck_warning_admin_code_village"),
        ),
        sa.CheckConstraint(
            "grid_code IS NULL OR grid_code ~ '^\\d{15}$'", name=op.f("ck_warning_grid_code_15")
        ),
        sa.CheckConstraint(
            "level IN ('blue', 'yellow', 'orange', 'red')", name=op.f("ck_warning_level")
        ),
        sa.CheckConstraint(
            "source_kind IN ('cma_signal', 'geohazard_meteo', 'flash_flood', 'hydrology', 'forest_fire_danger', 'other')",
            name=op.f("ck_warning_source_kind"),
        ),
        sa.CheckConstraint(
            "(geom IS NULL OR (ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90))",
            name=op.f("ck_warning_geom_valid"),
        ),
        sa.CheckConstraint(
            "geom IS NOT NULL OR cardinality(admin_codes) > 0", name=op.f("ck_warning_has_area")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning")),
    )
    op.create_geospatial_index(
        "idx_warning_geom",
        "warning",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_warning_admin_code"), "warning", ["admin_code"], unique=False)
    op.create_index(op.f("ix_warning_grid_code"), "warning", ["grid_code"], unique=False)
    op.create_table(
        "app_user",
        sa.Column("login", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.Column("scope_code", sa.String(length=12), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.CheckConstraint("login ~ '^[A-Za-z0-9_.@\\-]{2,64}$'", name=op.f("ck_app_user_login")),
        sa.CheckConstraint(
            "role IN ('admin', 'planner', 'surveyor', 'commander', 'grid_worker', 'viewer')",
            name=op.f("ck_app_user_role"),
        ),
        sa.CheckConstraint(
            "scope_code IS NOT NULL OR role = 'admin'", name=op.f("ck_app_user_scope_required")
        ),
        sa.ForeignKeyConstraint(
            ["scope_code"],
            ["admin_division.code"],
            name=op.f("fk_app_user_scope_code_admin_division"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("login", name=op.f("uq_app_user_login")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_app_user_token_hash")),
    )
    op.create_table(
        "classification_class",
        sa.Column("scheme_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("zh_name", sa.Text(), nullable=False),
        sa.Column("en_name", sa.Text(), nullable=False),
        sa.Column("ord", sa.Integer(), nullable=False),
        sa.Column("color", sa.String(length=7), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=True),
        sa.Column("max_value", sa.Float(), nullable=True),
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
        sa.CheckConstraint(
            "color ~ '^#[0-9a-f]{6}$'", name=op.f("ck_classification_class_color_hex")
        ),
        sa.ForeignKeyConstraint(
            ["scheme_id"],
            ["classification_scheme.id"],
            name=op.f("fk_classification_class_scheme_id_classification_scheme"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_classification_class")),
        sa.UniqueConstraint("scheme_id", "key", name="uq_class_scheme_key"),
        sa.UniqueConstraint("scheme_id", "ord", name="uq_class_scheme_ord"),
    )
    op.create_index(
        op.f("ix_classification_class_scheme_id"),
        "classification_class",
        ["scheme_id"],
        unique=False,
    )
    op.create_geospatial_table(
        "evacuation_route",
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="LINESTRING",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("geohazard_point_id", sa.BigInteger(), nullable=True),
        sa.Column("shelter_id", sa.BigInteger(), nullable=True),
        sa.Column("length_m", sa.Float(), nullable=True),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("source_crs", sa.String(length=12), nullable=True),
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
        sa.CheckConstraint(
            "(source_crs IS NULL OR source_crs IN ('CGCS2000', 'WGS84', 'GCJ02', 'BD09', 'XIAN80', 'BEIJING54', 'GK', 'LOCAL'))",
            name=op.f("ck_evacuation_route_source_crs"),
        ),
        sa.CheckConstraint(
            "admin_code IS NULL OR admin_code ~ '^\\d{12}$'",
            name=op.f("ck_evacuation_route_admin_code_village"),
        ),
        sa.CheckConstraint(
            "grid_code IS NULL OR grid_code ~ '^\\d{15}$'",
            name=op.f("ck_evacuation_route_grid_code_15"),
        ),
        sa.CheckConstraint(
            "(ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90)",
            name=op.f("ck_evacuation_route_geom_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["geohazard_point_id"],
            ["geohazard_point.id"],
            name=op.f("fk_evacuation_route_geohazard_point_id_geohazard_point"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shelter_id"],
            ["shelter.id"],
            name=op.f("fk_evacuation_route_shelter_id_shelter"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evacuation_route")),
    )
    op.create_geospatial_index(
        "idx_evacuation_route_geom",
        "evacuation_route",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_evacuation_route_admin_code"), "evacuation_route", ["admin_code"], unique=False
    )
    op.create_index(
        op.f("ix_evacuation_route_geohazard_point_id"),
        "evacuation_route",
        ["geohazard_point_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_evacuation_route_grid_code"), "evacuation_route", ["grid_code"], unique=False
    )
    op.create_index(
        op.f("ix_evacuation_route_shelter_id"), "evacuation_route", ["shelter_id"], unique=False
    )
    op.create_geospatial_table(
        "fire_point",
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("source_kind", sa.String(length=12), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confidence", sa.Integer(), nullable=True),
        sa.Column(
            "verification_status", sa.String(length=12), server_default="pending", nullable=False
        ),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("forest_patch_id", sa.BigInteger(), nullable=True),
        sa.Column("verified_by", sa.Text(), nullable=True),
        sa.Column("fed_back_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("source_crs", sa.String(length=12), nullable=True),
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
        sa.CheckConstraint(
            "(source_crs IS NULL OR source_crs IN ('CGCS2000', 'WGS84', 'GCJ02', 'BD09', 'XIAN80', 'BEIJING54', 'GK', 'LOCAL'))",
            name=op.f("ck_fire_point_source_crs"),
        ),
        sa.CheckConstraint(
            "(verdict IS NULL OR verdict IN ('forest_fire', 'agri_burning', 'industrial_heat', 'false_alarm', 'other'))",
            name=op.f("ck_fire_point_verdict"),
        ),
        sa.CheckConstraint(
            "admin_code IS NULL OR admin_code ~ '^\\d{12}$'",
            name=op.f("ck_fire_point_admin_code_village"),
        ),
        sa.CheckConstraint(
            "grid_code IS NULL OR grid_code ~ '^\\d{15}$'", name=op.f("ck_fire_point_grid_code_15")
        ),
        sa.CheckConstraint(
            "source_kind IN ('satellite', 'tower', 'video_ai', 'uav', 'patrol', 'public', 'checkpoint')",
            name=op.f("ck_fire_point_source_kind"),
        ),
        sa.CheckConstraint(
            "verification_status IN ('pending', 'dispatched', 'feedback', 'closed')",
            name=op.f("ck_fire_point_verification_status"),
        ),
        sa.CheckConstraint(
            "(ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90)",
            name=op.f("ck_fire_point_geom_valid"),
        ),
        sa.CheckConstraint(
            "confidence IS NULL OR confidence BETWEEN 0 AND 100",
            name=op.f("ck_fire_point_confidence"),
        ),
        sa.ForeignKeyConstraint(
            ["forest_patch_id"],
            ["forest_patch.id"],
            name=op.f("fk_fire_point_forest_patch_id_forest_patch"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fire_point")),
    )
    op.create_geospatial_index(
        "idx_fire_point_geom",
        "fire_point",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_fire_point_admin_code"), "fire_point", ["admin_code"], unique=False)
    op.create_index(
        op.f("ix_fire_point_forest_patch_id"), "fire_point", ["forest_patch_id"], unique=False
    )
    op.create_index(op.f("ix_fire_point_grid_code"), "fire_point", ["grid_code"], unique=False)
    op.create_geospatial_table(
        "grid",
        sa.Column("grid_code", sa.String(length=15), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=10), server_default="basic", nullable=False),
        sa.Column("community_code", sa.String(length=12), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("households", sa.Integer(), server_default="0", nullable=False),
        sa.Column("population", sa.Integer(), server_default="0", nullable=False),
        sa.Column("area_m2", sa.Float(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("valid_from", sa.Date(), server_default=sa.text("CURRENT_DATE"), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column(
            "supersedes",
            postgresql.ARRAY(sa.BigInteger()),
            server_default=sa.text("'{}'::bigint[]"),
            nullable=False,
        ),
        sa.Column("responsible_body", sa.Text(), nullable=True),
        sa.Column("remark", sa.Text(), nullable=True),
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
        sa.CheckConstraint("grid_code ~ '^\\d{15}$'", name=op.f("ck_grid_grid_code_15")),
        sa.CheckConstraint("kind IN ('basic', 'dedicated', 'micro')", name=op.f("ck_grid_kind")),
        sa.CheckConstraint(
            "(ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90)",
            name=op.f("ck_grid_geom_valid"),
        ),
        sa.CheckConstraint(
            "households >= 0 AND population >= 0", name=op.f("ck_grid_counts_nonneg")
        ),
        sa.CheckConstraint(
            "substr(grid_code, 1, 12) = community_code", name=op.f("ck_grid_code_in_community")
        ),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to >= valid_from", name=op.f("ck_grid_validity")
        ),
        sa.ForeignKeyConstraint(
            ["community_code"],
            ["admin_division.code"],
            name=op.f("fk_grid_community_code_admin_division"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid")),
        sa.UniqueConstraint("grid_code", "version", name="uq_grid_code_version"),
    )
    op.create_geospatial_index(
        "idx_grid_geom", "grid", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index("ix_grid_community_code", "grid", ["community_code"], unique=False)
    op.create_index(
        "uq_grid_current_code",
        "grid",
        ["grid_code"],
        unique=True,
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_table(
        "hazard_layer",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("hazard_type", sa.Text(), nullable=False),
        sa.Column("layer_kind", sa.String(length=20), nullable=False),
        sa.Column("data_type", sa.String(length=6), nullable=False),
        sa.Column("scenario", sa.Text(), nullable=True),
        sa.Column("return_period", sa.Integer(), nullable=True),
        sa.Column("scheme_key", sa.String(length=40), nullable=True),
        sa.Column("file_path", sa.Text(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("producer", sa.Text(), nullable=True),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
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
        sa.CheckConstraint(
            "data_type IN ('raster', 'vector')", name=op.f("ck_hazard_layer_data_type")
        ),
        sa.CheckConstraint(
            "layer_kind IN ('hazard', 'exposure', 'vulnerability', 'risk', 'prevention_zoning')",
            name=op.f("ck_hazard_layer_layer_kind"),
        ),
        sa.CheckConstraint(
            "return_period IS NULL OR return_period > 0",
            name=op.f("ck_hazard_layer_return_period_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["admin_code"],
            ["admin_division.code"],
            name=op.f("fk_hazard_layer_admin_code_admin_division"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hazard_layer")),
        sa.UniqueConstraint("key", name=op.f("uq_hazard_layer_key")),
    )
    op.create_index(
        op.f("ix_hazard_layer_admin_code"), "hazard_layer", ["admin_code"], unique=False
    )
    op.create_table(
        "person",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("org", sa.Text(), nullable=True),
        sa.Column("position", sa.Text(), nullable=True),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
        sa.Column("id_card_hash", sa.String(length=64), nullable=True),
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
        sa.CheckConstraint(
            "phone IS NULL OR phone ~ '^[0-9+()\\- ]{5,20}$'", name=op.f("ck_person_phone")
        ),
        sa.ForeignKeyConstraint(
            ["admin_code"],
            ["admin_division.code"],
            name=op.f("fk_person_admin_code_admin_division"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
    )
    op.create_index(op.f("ix_person_admin_code"), "person", ["admin_code"], unique=False)
    op.create_table(
        "grid_assignment",
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("employment", sa.String(length=10), nullable=True),
        sa.Column("start_date", sa.Date(), server_default=sa.text("CURRENT_DATE"), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
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
        sa.CheckConstraint(
            "(employment IS NULL OR employment IN ('fulltime', 'parttime'))",
            name=op.f("ck_grid_assignment_employment"),
        ),
        sa.CheckConstraint(
            "role IN ('grid_worker', 'grid_leader', 'grid_instructor', 'grid_supervisor', 'grid_admin')",
            name=op.f("ck_grid_assignment_role"),
        ),
        sa.CheckConstraint(
            "end_date IS NULL OR end_date >= start_date", name=op.f("ck_grid_assignment_period")
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"],
            ["grid.id"],
            name=op.f("fk_grid_assignment_grid_id_grid"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_grid_assignment_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid_assignment")),
    )
    op.create_index(
        op.f("ix_grid_assignment_grid_id"), "grid_assignment", ["grid_id"], unique=False
    )
    op.create_index(
        op.f("ix_grid_assignment_person_id"), "grid_assignment", ["person_id"], unique=False
    )
    op.create_table(
        "responsibility",
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("target_type", sa.String(length=20), nullable=False),
        sa.Column("target_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("duty", sa.String(length=24), nullable=False),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
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
        sa.CheckConstraint(
            "duty IN ('baobao', 'prevention_lead', 'monitor', 'patroller', 'warner', 'evacuation_lead', 'ranger', 'disaster_info_officer', 'regulator', 'enterprise_principal')",
            name=op.f("ck_responsibility_duty"),
        ),
        sa.CheckConstraint(
            "level IN ('city', 'county', 'township', 'village', 'group')",
            name=op.f("ck_responsibility_level"),
        ),
        sa.CheckConstraint(
            "target_type IN ('admin_division', 'grid', 'enterprise', 'geohazard_point', 'geohazard_zone', 'forest_patch', 'shelter')",
            name=op.f("ck_responsibility_target_type"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_responsibility_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_responsibility")),
    )
    op.create_index(
        op.f("ix_responsibility_admin_code"), "responsibility", ["admin_code"], unique=False
    )
    op.create_index(
        op.f("ix_responsibility_person_id"), "responsibility", ["person_id"], unique=False
    )
    op.create_index(
        "ix_responsibility_target", "responsibility", ["target_type", "target_id"], unique=False
    )
    op.create_geospatial_table(
        "safety_hazard",
        sa.Column("hazard_no", sa.String(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enterprise_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=True),
        sa.Column("found_via", sa.String(length=24), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="found", nullable=False),
        sa.Column("escalated", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("responsible_org", sa.Text(), nullable=True),
        sa.Column("responsible_person_id", sa.BigInteger(), nullable=True),
        sa.Column("measures", sa.Text(), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column(
            "found_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("admin_code", sa.String(length=12), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("source_crs", sa.String(length=12), nullable=True),
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
        sa.CheckConstraint(
            "(category IS NULL OR category IN ('basic_management', 'site'))",
            name=op.f("ck_safety_hazard_category"),
        ),
        sa.CheckConstraint(
            "(found_via IS NULL OR found_via IN ('self_check', 'inspection', 'grid_patrol', 'public_report', 'expert', 'covert', 'assigned_from_above', 'survey'))",
            name=op.f("ck_safety_hazard_found_via"),
        ),
        sa.CheckConstraint(
            "(source_crs IS NULL OR source_crs IN ('CGCS2000', 'WGS84', 'GCJ02', 'BD09', 'XIAN80', 'BEIJING54', 'GK', 'LOCAL'))",
            name=op.f("ck_safety_hazard_source_crs"),
        ),
        sa.CheckConstraint(
            "(status = 'closed') = (closed_at IS NOT NULL)", name=op.f("ck_safety_hazard_closed_at")
        ),
        sa.CheckConstraint(
            "admin_code IS NULL OR admin_code ~ '^\\d{12}$'",
            name=op.f("ck_safety_hazard_admin_code_village"),
        ),
        sa.CheckConstraint(
            "grid_code IS NULL OR grid_code ~ '^\\d{15}$'",
            name=op.f("ck_safety_hazard_grid_code_15"),
        ),
        sa.CheckConstraint("level IN ('general', 'major')", name=op.f("ck_safety_hazard_level")),
        sa.CheckConstraint(
            "status IN ('found', 'assigned', 'rectifying', 'closeout_requested', 'closed')",
            name=op.f("ck_safety_hazard_status"),
        ),
        sa.CheckConstraint(
            "(geom IS NULL OR (ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90))",
            name=op.f("ck_safety_hazard_geom_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprise.id"],
            name=op.f("fk_safety_hazard_enterprise_id_enterprise"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["responsible_person_id"],
            ["person.id"],
            name=op.f("fk_safety_hazard_responsible_person_id_person"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_hazard")),
        sa.UniqueConstraint("hazard_no", name=op.f("uq_safety_hazard_hazard_no")),
    )
    op.create_geospatial_index(
        "idx_safety_hazard_geom",
        "safety_hazard",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_safety_hazard_admin_code"), "safety_hazard", ["admin_code"], unique=False
    )
    op.create_index(
        op.f("ix_safety_hazard_enterprise_id"), "safety_hazard", ["enterprise_id"], unique=False
    )
    op.create_index(
        op.f("ix_safety_hazard_grid_code"), "safety_hazard", ["grid_code"], unique=False
    )
    op.create_index("ix_safety_hazard_status", "safety_hazard", ["status"], unique=False)
    op.create_table(
        "hazard_event",
        sa.Column("hazard_id", sa.BigInteger(), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("note", sa.Text(), nullable=True),
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
        sa.CheckConstraint(
            "(from_status IS NULL OR from_status IN ('found', 'assigned', 'rectifying', 'closeout_requested', 'closed'))",
            name=op.f("ck_hazard_event_from_status"),
        ),
        sa.CheckConstraint(
            "to_status IN ('found', 'assigned', 'rectifying', 'closeout_requested', 'closed')",
            name=op.f("ck_hazard_event_to_status"),
        ),
        sa.ForeignKeyConstraint(
            ["hazard_id"],
            ["safety_hazard.id"],
            name=op.f("fk_hazard_event_hazard_id_safety_hazard"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hazard_event")),
    )
    op.create_index(op.f("ix_hazard_event_hazard_id"), "hazard_event", ["hazard_id"], unique=False)
    _triggers()


def downgrade() -> None:
    op.drop_index(op.f("ix_hazard_event_hazard_id"), table_name="hazard_event")
    op.drop_table("hazard_event")
    op.drop_index("ix_safety_hazard_status", table_name="safety_hazard")
    op.drop_index(op.f("ix_safety_hazard_grid_code"), table_name="safety_hazard")
    op.drop_index(op.f("ix_safety_hazard_enterprise_id"), table_name="safety_hazard")
    op.drop_index(op.f("ix_safety_hazard_admin_code"), table_name="safety_hazard")
    op.drop_geospatial_index(
        "idx_safety_hazard_geom",
        table_name="safety_hazard",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("safety_hazard")
    op.drop_index("ix_responsibility_target", table_name="responsibility")
    op.drop_index(op.f("ix_responsibility_person_id"), table_name="responsibility")
    op.drop_index(op.f("ix_responsibility_admin_code"), table_name="responsibility")
    op.drop_table("responsibility")
    op.drop_index(op.f("ix_grid_assignment_person_id"), table_name="grid_assignment")
    op.drop_index(op.f("ix_grid_assignment_grid_id"), table_name="grid_assignment")
    op.drop_table("grid_assignment")
    op.drop_index(op.f("ix_person_admin_code"), table_name="person")
    op.drop_table("person")
    op.drop_index(op.f("ix_hazard_layer_admin_code"), table_name="hazard_layer")
    op.drop_table("hazard_layer")
    op.drop_index(
        "uq_grid_current_code", table_name="grid", postgresql_where=sa.text("valid_to IS NULL")
    )
    op.drop_index("ix_grid_community_code", table_name="grid")
    op.drop_geospatial_index(
        "idx_grid_geom", table_name="grid", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("grid")
    op.drop_index(op.f("ix_fire_point_grid_code"), table_name="fire_point")
    op.drop_index(op.f("ix_fire_point_forest_patch_id"), table_name="fire_point")
    op.drop_index(op.f("ix_fire_point_admin_code"), table_name="fire_point")
    op.drop_geospatial_index(
        "idx_fire_point_geom", table_name="fire_point", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("fire_point")
    op.drop_index(op.f("ix_evacuation_route_shelter_id"), table_name="evacuation_route")
    op.drop_index(op.f("ix_evacuation_route_grid_code"), table_name="evacuation_route")
    op.drop_index(op.f("ix_evacuation_route_geohazard_point_id"), table_name="evacuation_route")
    op.drop_index(op.f("ix_evacuation_route_admin_code"), table_name="evacuation_route")
    op.drop_geospatial_index(
        "idx_evacuation_route_geom",
        table_name="evacuation_route",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("evacuation_route")
    op.drop_index(op.f("ix_classification_class_scheme_id"), table_name="classification_class")
    op.drop_table("classification_class")
    op.drop_table("app_user")
    op.drop_index(op.f("ix_warning_grid_code"), table_name="warning")
    op.drop_index(op.f("ix_warning_admin_code"), table_name="warning")
    op.drop_geospatial_index(
        "idx_warning_geom", table_name="warning", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("warning")
    op.drop_index(op.f("ix_shelter_grid_code"), table_name="shelter")
    op.drop_index(op.f("ix_shelter_admin_code"), table_name="shelter")
    op.drop_geospatial_index(
        "idx_shelter_site", table_name="shelter", postgresql_using="gist", column_name="site"
    )
    op.drop_geospatial_index(
        "idx_shelter_geom", table_name="shelter", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("shelter")
    op.drop_index(op.f("ix_geohazard_zone_grid_code"), table_name="geohazard_zone")
    op.drop_index(op.f("ix_geohazard_zone_admin_code"), table_name="geohazard_zone")
    op.drop_geospatial_index(
        "idx_geohazard_zone_geom",
        table_name="geohazard_zone",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("geohazard_zone")
    op.drop_index(op.f("ix_geohazard_point_grid_code"), table_name="geohazard_point")
    op.drop_index(op.f("ix_geohazard_point_admin_code"), table_name="geohazard_point")
    op.drop_geospatial_index(
        "idx_geohazard_point_geom",
        table_name="geohazard_point",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("geohazard_point")
    op.drop_index(op.f("ix_forest_patch_grid_code"), table_name="forest_patch")
    op.drop_index(op.f("ix_forest_patch_admin_code"), table_name="forest_patch")
    op.drop_geospatial_index(
        "idx_forest_patch_geom",
        table_name="forest_patch",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("forest_patch")
    op.drop_index("ix_facility_kind", table_name="facility")
    op.drop_index(op.f("ix_facility_grid_code"), table_name="facility")
    op.drop_index(op.f("ix_facility_admin_code"), table_name="facility")
    op.drop_geospatial_index(
        "idx_facility_geom", table_name="facility", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("facility")
    op.drop_index("ix_enterprise_risk_level", table_name="enterprise")
    op.drop_index(op.f("ix_enterprise_grid_code"), table_name="enterprise")
    op.drop_index(op.f("ix_enterprise_admin_code"), table_name="enterprise")
    op.drop_geospatial_index(
        "idx_enterprise_geom", table_name="enterprise", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("enterprise")
    op.drop_table("classification_scheme")
    op.drop_index(op.f("ix_building_grid_code"), table_name="building")
    op.drop_index(op.f("ix_building_admin_code"), table_name="building")
    op.drop_geospatial_index(
        "idx_building_geom", table_name="building", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("building")
    op.drop_index(op.f("ix_barrier_line_grid_code"), table_name="barrier_line")
    op.drop_index(op.f("ix_barrier_line_admin_code"), table_name="barrier_line")
    op.drop_geospatial_index(
        "idx_barrier_line_geom",
        table_name="barrier_line",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("barrier_line")
    op.drop_index("ix_audit_log_row", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_admin_division_parent_code"), table_name="admin_division")
    op.drop_index("ix_admin_division_level", table_name="admin_division")
    op.drop_index(
        "ix_admin_division_ancestors", table_name="admin_division", postgresql_using="gin"
    )
    op.drop_geospatial_index(
        "idx_admin_division_label_point",
        table_name="admin_division",
        postgresql_using="gist",
        column_name="label_point",
    )
    op.drop_geospatial_index(
        "idx_admin_division_boundary",
        table_name="admin_division",
        postgresql_using="gist",
        column_name="boundary",
    )
    op.drop_geospatial_table("admin_division")
    op.execute(read_sql("drop_functions.sql"))
