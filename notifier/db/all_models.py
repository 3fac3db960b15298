"""Every module that defines tables, imported so that ``Base.metadata`` knows them all
(Alembic's autogenerate and ``env.py`` import this)."""

from notifier.campaigns import models as campaign_models  # noqa: F401
from notifier.content import models as content_models  # noqa: F401
from notifier.db import models
from notifier.services import models as service_models  # noqa: F401
from notifier.support import models as support_models  # noqa: F401

Base = models.Base
