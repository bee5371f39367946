"""Grid partitioning and assignment."""

from __future__ import annotations

from gis_service.api.routes import router

api = router("grids")
