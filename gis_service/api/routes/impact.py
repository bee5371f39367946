"""Hazard layers, raster tiles and values, warnings, impact analysis and readiness checks."""

from __future__ import annotations

from gis_service.api.routes import router

api = router("impact")
