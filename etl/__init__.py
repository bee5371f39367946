"""Importers: read → detect encoding → map columns → convert coordinates → validate → load.

Depends on ``gis_service`` (settings, errors, crs, db); ``gis_service`` never imports ``etl``.
"""
