"""Hazard overlays (raster and zone layers), warnings, impact analysis (转移清单) and readiness checks."""
