"""Database layer: models, migrations, engines and the embedded cluster."""
