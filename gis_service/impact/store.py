"""Where a raster layer's COG is read from: the raster folder, filled from the database."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.impact import catalog, rasters


async def layer_file(conn: AsyncConnection, folder: Path, sha256: str) -> Path:
    """The local path of the COG with this digest, written from the database when missing."""
    path = folder / f"{sha256}.tif"
    if path.exists():
        return path
    data = await catalog.raster_bytes(conn, sha256)
    return await asyncio.to_thread(rasters.ensure_file, folder, sha256, data)
