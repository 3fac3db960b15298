"""Everything Celery: the worker app, delivery tasks, the engine, safety nets and beat."""
