"""Campaign tables (templates, contacts, audiences, campaigns). Alembic finds them through
notifier.db.all_models."""
