"""OGC API Features over the declared layers."""
