"""Vector tiles (ST_AsMVT per declared layer), their cache, and PMTiles export/serving."""
