"""The one placeholder that stands in for a hidden value, wherever a value is hidden.

Sensitive template values in stored and shown content, secret-named fields in log lines and
personal data in Sentry events are all replaced by :data:`REDACTED`, so an operator grepping a
dump, a log or an error report looks for one spelling (there used to be three).
"""

from __future__ import annotations

REDACTED = "[redacted]"
