"""Persistence: SQLModel tables, Alembic migrations and the repositories that the service uses."""
