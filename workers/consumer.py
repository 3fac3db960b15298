"""The worker's broker consumer: Celery's, with one guard so a Redis restart cannot end the worker.

What happens without it (Celery 5.7, kombu 5.7, Redis broker), while the worker holds
unacknowledged messages (``acks_late``: every task in flight) and the broker connection drops:
Celery's consumer calls ``connection.collect()``, which tries to close the channels (failing
half-way: Redis is down) and then detaches the transport from the connection
(``transport.client = None``). Two things then need the connection parameters through
``transport.client`` and find ``None``: Celery's ``connection.close()``, which closes the
half-closed channel again and tries to restore its unacknowledged messages, and, after the
reconnect, the acknowledgement of every task that was running on the old channel. Both raise
``AttributeError: 'NoneType' object has no attribute 'hostname'``, which is not a connection
error: it escapes the reconnect loop as "Unrecoverable error" and the worker exits.

The guard: when Celery's connection-loss handler fails that way (the connection's transport
detached), it logs ``worker.broker.close_failed`` and lets the consumer reconnect as for any
connection loss; either way it re-attaches the old transport to its connection, so the late
acknowledgements and restores of the old channel reach Redis (or fail with an ordinary
connection error, which Celery logs and survives). Nothing else in Celery's handler matters
here: the connection is already dropped, and cancelling long-running tasks and the prefetch
reduction are off in our configuration (``notifier.broker``). Messages that could not be
restored stay in Redis's unacked set (redelivered after ``visibility_timeout``) or, with a Redis
that lost its data, are gone; the sweeper re-publishes notifications left ``queued`` and
recovers those left ``sending``, and the guarded claim makes a late redelivery a no-op.
"""

from __future__ import annotations

import logging

from celery.worker.consumer import Consumer as CeleryConsumer

log = logging.getLogger("notifier.worker.consumer")


class Consumer(CeleryConsumer):
    def on_connection_error_after_connected(self, exc: BaseException) -> None:
        connection = self.connection
        transport = getattr(connection, "_transport", None)
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError as error:
            if transport is None or transport.client is not None:
                raise  # not the case described above: let Celery treat it as it would
            log.warning(
                "worker.broker.close_failed",
                extra={"error_type": type(error).__name__, "cause": type(exc).__name__},
            )
        finally:
            if transport is not None and transport.client is None:
                transport.client = connection  # the old channel's late acks need its parameters
