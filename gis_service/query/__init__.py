"""Spatial questions: locate, nearby, nearest, area summaries and statistics."""
