"""Deterministic synthetic demo data: a 株洲 district or the whole city, generated in memory."""
