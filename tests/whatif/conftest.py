from tests.db.databases import databases, engine  # noqa: F401  (fixtures)
