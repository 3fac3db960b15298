"""The ceiling for intake: a FastAPI endpoint that validates the same body and answers 202.

Served with the same uvicorn settings as the real API, so the ratio between them is the cost of
what intake adds: authentication, rendering, the database write and the broker publish.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Body, FastAPI

from notifier.notifications.schemas import NotificationRequest

app = FastAPI()


@app.post("/v1/notifications", status_code=202)
async def accept(request: Annotated[NotificationRequest, Body()]) -> dict[str, str]:
    return {"id": str(uuid.uuid4()), "status": "queued", "channel": request.channel}
