"""gis-service: grids, risks and hazards of an emergency-management bureau, served from PostGIS."""

__version__ = "0.1.0"
