"""What intake and campaigns both use, below both: stored templates (resolve and render), quiet
hours, unsubscribe links. Nothing here imports :mod:`notifier.campaigns` or
:mod:`notifier.notifications`."""
