"""Hazard overlays (raster and zone layers), warnings, impact analysis and readiness checks."""
