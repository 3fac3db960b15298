"""Services: one notifier shared by many product teams.

A service owns its API keys (each ``live``, ``test`` or ``team``), its sender identities,
provider chains, rate limits and daily quotas per lane, its retention period, its status
webhook and its recipient allow-list (for team keys and trial mode). Every setting a service
leaves unset falls back to the platform's, and none can widen what the platform forbids
(:mod:`notifier.services.rules`). The service is resolved with the key, in the same query and
the same per-process cache (:mod:`notifier.keys`), so it costs intake nothing per request.
"""
