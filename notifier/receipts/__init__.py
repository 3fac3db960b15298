"""Provider receipts: what a provider tells us about a message after it accepted it.

The path of a receipt:

1. ``POST /v1/receipts/twilio`` or ``POST /v1/receipts/ses`` (:mod:`notifier.api.v1.receipts`)
   proves the request came from the provider (:mod:`notifier.receipts.inbound`), turns it into
   :class:`~providers.interface.Receipt` objects and publishes them, as JSON
   (:mod:`notifier.receipts.schemas`), on the ``receipts`` queue. It answers at once.
2. The ``notifier.receipts.apply`` task (:mod:`workers.receipts`) applies them
   (:mod:`notifier.receipts.service`): a ``receipt`` event on the notification's timeline,
   the status moved forward when the receipt is final, and a suppression when the address bounced
   hard, complained or opted out.
"""
