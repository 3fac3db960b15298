"""The process-wide parts built once from settings and handed to the API and the workers.

Passed explicitly (``app.state.runtime``, ``celery_app.runtime``), never looked up through an
import-time global, so tests build their own with their own settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from notifier.authentication import Authenticator
from notifier.broker import make_celery
from notifier.config import Settings
from notifier.db.session import make_engine, make_sessionmaker
from notifier.notifications.intake import Intake
from notifier.publishing import Publisher
from notifier.ratelimit import RateLimiter
from notifier.security import Sealer


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    celery: Celery

    @classmethod
    def build(
        cls,
        settings: Settings,
        celery: Celery | None = None,
        pool_size: int | None = None,
        kind: str = "api",
    ) -> Runtime:
        """``pool_size`` overrides the connections of this process kind (tests use it)."""
        engine = make_engine(
            settings.database_url,
            pool_size=pool_size if pool_size is not None else settings.pool_size_for(kind),
            max_overflow=settings.db_max_overflow,
            pooler=settings.database_pooler,
        )
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            celery=celery or make_celery(settings),
        )

    @cached_property
    def publisher(self) -> Publisher:
        return Publisher(self.celery)

    @cached_property
    def limiter(self) -> RateLimiter:
        return RateLimiter(self.settings.redis_url)

    @cached_property
    def sealer(self) -> Sealer:
        return Sealer(self.settings.secret_key)

    @cached_property
    def authenticator(self) -> Authenticator:
        return Authenticator(self.sessions)

    @cached_property
    def intake(self) -> Intake:
        return Intake(self.settings, self.sessions, self.publisher, self.limiter, self.sealer)

    def close(self) -> None:
        if "authenticator" in self.__dict__:  # its refresher stops reading the database
            self.authenticator.close()
        self.engine.dispose()
