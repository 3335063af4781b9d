"""Database: SQLAlchemy base, engine and sessions, Alembic migrations."""
