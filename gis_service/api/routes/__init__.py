"""Route modules: each is thin and delegates to ``gis_service.domain``."""

from fastapi import APIRouter

from gis_service.api.strict import StrictRoute


def router(tag: str) -> APIRouter:
    """A router whose routes refuse unknown and repeated query parameters."""
    return APIRouter(tags=[tag], route_class=StrictRoute)
