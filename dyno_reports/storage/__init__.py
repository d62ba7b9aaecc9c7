"""Our PostgreSQL tables (one metadata module) and their Alembic migrations."""
