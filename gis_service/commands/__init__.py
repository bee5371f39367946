r"""Typer sub-commands, one module per capability; \`gis_service.cli\` mounts them."""
