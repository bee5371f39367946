"""The layer registry: the declared layers of `layers/*.yaml`.

It is the only source of SQL identifiers.
"""
