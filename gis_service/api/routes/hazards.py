"""The 隐患 ledger."""

from __future__ import annotations

from gis_service.api.routes import router

api = router("hazards")
