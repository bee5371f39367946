"""ASGI entry point for uvicorn: ``uvicorn gis_service.main:app``."""

from gis_service.api.app import create_app

app = create_app()
