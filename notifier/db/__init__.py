"""Persistence: SQLAlchemy models, session setup and the queries (repositories)."""
