"""Support console tables (staff, sessions, audit). Alembic finds them through notifier.db.all_models."""
