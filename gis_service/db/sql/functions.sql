-- Trigger functions shared by the schema. Loaded by the first migration.
-- Session settings read here are set with SET LOCAL inside the caller's transaction
-- (never session-wide on a pooled connection):
--   gis.actor, gis.scope, gis.request_id  who is writing (audit)
--   gis.bulk = 'on'                       a bulk load: no per-row stamping or auditing;
--                                         the loader stamps set-based and writes one BULK row.

-- updated_at and the optimistic-lock version move on every update.
CREATE OR REPLACE FUNCTION gis_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    NEW.row_version := OLD.row_version + 1;
    RETURN NEW;
END $$;

-- admin_division: ancestors from the parent (explicit hierarchy, not string prefixes),
-- and a label point that always lies inside the boundary.
CREATE OR REPLACE FUNCTION gis_admin_division_derive() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    parent_ancestors text[];
BEGIN
    IF NEW.parent_code IS NULL THEN
        NEW.ancestors := ARRAY[NEW.code];
    ELSE
        SELECT ancestors INTO parent_ancestors FROM admin_division WHERE code = NEW.parent_code;
        IF parent_ancestors IS NULL THEN
            RAISE EXCEPTION 'parent % of % does not exist', NEW.parent_code, NEW.code
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        IF NEW.code = ANY(parent_ancestors) THEN
            RAISE EXCEPTION 'cycle in admin_division at %', NEW.code
                USING ERRCODE = 'check_violation';
        END IF;
        NEW.ancestors := parent_ancestors || NEW.code;
    END IF;
    IF NEW.boundary IS NOT NULL THEN
        NEW.label_point := ST_PointOnSurface(NEW.boundary);
    ELSE
        NEW.label_point := NULL;
    END IF;
    RETURN NEW;
END $$;

-- The village and the current grid a geometry lies in (by a representative point,
-- so a polygon or line is counted once, in the unit holding most of it).
CREATE OR REPLACE FUNCTION gis_village_at(p geometry) RETURNS varchar
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT code FROM admin_division
    WHERE level = 'village' AND valid_to IS NULL AND boundary && p AND ST_Intersects(boundary, p)
    ORDER BY code LIMIT 1
$$;

CREATE OR REPLACE FUNCTION gis_grid_at(p geometry) RETURNS varchar
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT grid_code FROM grid
    WHERE valid_to IS NULL AND geom && p AND ST_Intersects(geom, p)
    ORDER BY grid_code LIMIT 1
$$;

-- Stamp admin_code/grid_code of a located row from its geometry. A row outside every
-- village keeps an explicitly given admin_code; the grid is always the spatial answer.
CREATE OR REPLACE FUNCTION gis_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    p geometry;
    village varchar;
BEGIN
    IF coalesce(current_setting('gis.bulk', true), '') = 'on' OR NEW.geom IS NULL THEN
        RETURN NEW;
    END IF;
    p := ST_PointOnSurface(NEW.geom);
    village := gis_village_at(p);
    IF village IS NOT NULL THEN
        NEW.admin_code := village;
    END IF;
    NEW.grid_code := gis_grid_at(p);
    RETURN NEW;
END $$;

-- The village and grid of every row of a table with (id, geom), optionally only those
-- meeting an area. Polygon-driven: each village/grid probes the rows' GiST index, so the
-- polygon stays the same across consecutive tests and PostGIS reuses it prepared.
-- Rows in no village/grid come back with NULLs.
CREATE OR REPLACE FUNCTION gis_stamps(tbl regclass, area geometry DEFAULT NULL)
RETURNS TABLE (id bigint, admin_code varchar, grid_code varchar)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH rows AS (
             SELECT t.id FROM %1$s t
             WHERE t.geom IS NOT NULL AND ($1 IS NULL OR t.geom && $1)
         ), villages AS (
             SELECT DISTINCT ON (t.id) t.id, v.code
             FROM admin_division v JOIN %1$s t
               ON t.geom && v.boundary AND ST_Intersects(v.boundary, ST_PointOnSurface(t.geom))
             WHERE v.level = ''village'' AND v.valid_to IS NULL
               AND ($1 IS NULL OR t.geom && $1)
             ORDER BY t.id, v.code
         ), grids AS (
             SELECT DISTINCT ON (t.id) t.id, g.grid_code
             FROM grid g JOIN %1$s t
               ON t.geom && g.geom AND ST_Intersects(g.geom, ST_PointOnSurface(t.geom))
             WHERE g.valid_to IS NULL AND ($1 IS NULL OR t.geom && $1)
             ORDER BY t.id, g.grid_code
         )
         SELECT rows.id, villages.code::varchar, grids.grid_code::varchar
         FROM rows LEFT JOIN villages USING (id) LEFT JOIN grids USING (id)',
        tbl)
    USING area;
END $$;

-- Re-stamp the rows of a located table (or those meeting an area) in one statement.
-- Used when grids or villages change. A row outside every village keeps its admin_code.
-- Returns the number of rows whose stamp changed.
CREATE OR REPLACE FUNCTION gis_restamp(tbl regclass, area geometry DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format(
        'UPDATE %1$s t
         SET admin_code = coalesce(s.admin_code, t.admin_code), grid_code = s.grid_code
         FROM gis_stamps(%2$L::regclass, $1) s
         WHERE t.id = s.id
           AND (t.admin_code IS DISTINCT FROM coalesce(s.admin_code, t.admin_code)
                OR t.grid_code IS DISTINCT FROM s.grid_code)',
        tbl, tbl::text)
    USING area;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Audit: one row per write, in the same transaction, with the DB clock.
CREATE OR REPLACE FUNCTION gis_audit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rid bigint;
BEGIN
    IF coalesce(current_setting('gis.bulk', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN rid := OLD.id; ELSE rid := NEW.id; END IF;
    INSERT INTO audit_log (table_name, row_id, action, actor, scope, request_id, before, after)
    VALUES (
        TG_TABLE_NAME, rid, TG_OP,
        nullif(current_setting('gis.actor', true), ''),
        nullif(current_setting('gis.scope', true), ''),
        nullif(current_setting('gis.request_id', true), ''),
        CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END,
        CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END);
    RETURN NULL;
END $$;

-- The audit trail is append-only.
CREATE OR REPLACE FUNCTION gis_audit_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
