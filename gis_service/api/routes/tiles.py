"""Vector tiles, TileJSON, styles, the layer catalogue and PMTiles."""

from __future__ import annotations

from gis_service.api.routes import router

api = router("tiles")
