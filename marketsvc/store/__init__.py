"""The store: engine and connections, models, migrations, demo data."""
