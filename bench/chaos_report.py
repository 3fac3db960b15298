"""The chaos benchmark's figures, from outside first: the sink's file and the client's ids.

* **lost**: accepted ids that never arrived at the sink (whatever status our table gives them);
* **duplicates at the sink**: accepted notifications that arrived more than once (and how many
  extra copies; how many of them carried one Message-ID, which a receiver could de-duplicate);
* **duplicates in our records**: notifications with more than one accepted ``attempt`` event in
  ``delivery_events``; **not in our records**: those the sink saw more often than our events say
  they were accepted, i.e. the duplicates nobody could see from our side (target: 0);
* **longest stall**: the longest time without any send at the sink while work remained, i.e.
  while some accepted notification had not arrived yet;
* per fault, **recovery**: seconds from the fault until every notification accepted before it
  had arrived (null if some never did), and the first send after the component was back.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import create_engine, text

from bench.smtp_sink import SinkCount

ACCEPTED_ATTEMPTS = (
    "SELECT notification_id, count(*) FROM delivery_events WHERE kind = 'attempt' "
    "AND provider_message_id IS NOT NULL GROUP BY notification_id"
)
# every send our records know happened or may have happened: accepted attempts, attempts whose
# acceptance is unknown (a timeout after the request went), and recoveries whose write-ahead
# record named the provider in flight when the worker died
POSSIBLE_SENDS = (
    "SELECT notification_id, count(*) FROM delivery_events WHERE "
    "(kind = 'attempt' AND (provider_message_id IS NOT NULL "
    "OR detail LIKE '%acceptance unknown%')) "
    "OR (kind = 'recovered' AND provider IS NOT NULL) GROUP BY notification_id"
)


@dataclass
class Fault:
    kind: str
    at: float  # unix time it was injected
    back: float | None = None  # unix time the component answered again
    detail: str = ""

    def figures(self, started: float, accepted: dict[str, float], sink: SinkCount) -> dict:
        first_seen = sink.first_seen()
        before = [
            nid
            for nid, t in accepted.items()
            if t < self.at and first_seen.get(nid, float("inf")) >= self.at
        ]
        arrivals = [first_seen[nid] for nid in before if nid in first_seen]
        recovery = (
            None
            if len(arrivals) < len(before)
            else round(max(arrivals, default=self.at) - self.at, 2)
        )
        after = [s.at for s in sink.sends if self.back is not None and s.at >= self.back]
        return {
            "fault": self.kind,
            **({"detail": self.detail} if self.detail else {}),
            "at_s": round(self.at - started, 2),
            "down_s": round(self.back - self.at, 2) if self.back else None,
            "pending_at_fault": len(before),
            "recovery_s": recovery,
            "first_send_after_back_s": round(min(after) - self.back, 2)
            if after and self.back
            else None,
        }


def longest_stall(accepted: dict[str, float], sink: SinkCount, end: float) -> float:
    """The longest gap between sends at the sink (or since work appeared) while work remained."""
    first_seen = sink.first_seen()
    events: list[
        tuple[float, int]
    ] = []  # (time, +1 work appears / -1 work done / 0 a duplicate send)
    for nid, t in accepted.items():
        seen = first_seen.get(nid)
        events.append((min(t, seen) if seen is not None else t, 1))
        if seen is not None:
            events.append((seen, -1))
    counted = {nid: 0 for nid in first_seen}
    for send in sink.sends:
        counted[send.notification_id] = counted.get(send.notification_id, 0) + 1
        if counted[send.notification_id] > 1 or send.notification_id not in accepted:
            events.append((send.at, 0))
    events.sort(key=lambda e: (e[0], -e[1]))
    pending, since, longest = 0, None, 0.0
    for at, change in events:
        if change <= 0 and since is not None:  # a send: the end of a gap
            longest = max(longest, at - since)
            since = at
        pending += change
        if change == 1 and pending == 1:
            since = at  # work appeared after a time with none
        if pending == 0:
            since = None
    if pending > 0 and since is not None:
        longest = max(longest, end - since)
    return round(longest, 2)


def records(database_url: str, accepted_ids: set[str], sink: SinkCount) -> dict:
    """What our own tables say, and which duplicates at the sink they do not show."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as c:
            statuses: dict[str, int] = dict(
                c.execute(text("SELECT status, count(*) FROM notifications GROUP BY status")).all()
            )
            recorded: dict[str, int] = dict(c.execute(text(ACCEPTED_ATTEMPTS)).all())
            possible: dict[str, int] = dict(c.execute(text(POSSIBLE_SENDS)).all())
            kinds: dict[str, int] = dict(
                c.execute(text("SELECT kind, count(*) FROM delivery_events GROUP BY kind")).all()
            )
    finally:
        engine.dispose()
    at_sink = sink.duplicated()
    invisible = sum(1 for nid, copies in at_sink.items() if copies > possible.get(nid, 0))
    lost_ids = accepted_ids - set(sink.first_seen())
    return {
        "duplicates_recorded": sum(1 for count in recorded.values() if count > 1),
        "possible_duplicates_recorded": sum(1 for count in possible.values() if count > 1),
        "duplicates_not_in_records": invisible,
        "unconfirmed": statuses.get("unconfirmed", 0),
        "statuses": statuses,
        "lost_by_status": _lost_by_status(database_url, lost_ids) if lost_ids else {},
        "events": {
            k: kinds[k] for k in ("recovered", "republished", "retry_scheduled") if k in kinds
        },
    }


def _lost_by_status(database_url: str, ids: set[str]) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as c:
            rows = c.execute(
                text(
                    "SELECT status, count(*) FROM notifications "
                    "WHERE id = ANY(:ids) GROUP BY status"
                ),
                {"ids": list(ids)},
            ).all()
    finally:
        engine.dispose()
    found: dict[str, int] = dict(rows)
    missing = len(ids) - sum(found.values())
    return {**found, **({"not_stored": missing} if missing else {})}


def sink_figures(accepted: dict[str, float], sink: SinkCount) -> dict:
    duplicated = sink.duplicated()
    return {
        "lost": len(set(accepted) - set(sink.first_seen())),
        "duplicates_at_sink": sum(1 for nid in duplicated if nid in accepted),
        "extra_sends_at_sink": sum(
            copies - 1 for nid, copies in duplicated.items() if nid in accepted
        ),
        "duplicates_same_message_id": sink.duplicates_with_same_message_id(),
        "sends_of_unknown_ids": sum(
            len(s) for nid, s in sink.by_notification.items() if nid not in accepted
        ),
    }
