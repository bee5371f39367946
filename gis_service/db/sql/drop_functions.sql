DROP FUNCTION IF EXISTS gis_audit_immutable() CASCADE;
DROP FUNCTION IF EXISTS gis_audit() CASCADE;
DROP FUNCTION IF EXISTS gis_restamp(regclass, geometry) CASCADE;
DROP FUNCTION IF EXISTS gis_stamps(regclass, geometry) CASCADE;
DROP FUNCTION IF EXISTS gis_stamp() CASCADE;
DROP FUNCTION IF EXISTS gis_grid_at(geometry) CASCADE;
DROP FUNCTION IF EXISTS gis_village_at(geometry) CASCADE;
DROP FUNCTION IF EXISTS gis_admin_division_derive() CASCADE;
DROP FUNCTION IF EXISTS gis_touch() CASCADE;
