"""The database: engine and sessions, models, sealed node secrets, Alembic migrations."""
