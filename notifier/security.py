"""API keys and sealed secrets.

API keys look like ``ntf_<prefix>_<secret>``. Only the SHA-256 of the whole key is stored: keys
carry 256 bits of randomness, so a fast hash is safe against brute force and keeps intake fast
(a password hash such as Argon2 would cost ~50 ms per request for no gain). The prefix finds
the row; the hash is compared in constant time.

Sensitive rendered content that delivery still needs is sealed with Fernet (AES-128-CBC +
HMAC-SHA256) under a key derived from ``NOTIFIER_SECRET_KEY`` and wiped once the notification
is final.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

KEY_PREFIX = "ntf"


@dataclass(frozen=True)
class NewApiKey:
    prefix: str
    secret_hash: str
    plaintext: str


def generate_api_key() -> NewApiKey:
    prefix = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(prefix=prefix, secret_hash=hash_api_key(plaintext), plaintext=plaintext)


def hash_api_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def parse_prefix(plaintext: str) -> str | None:
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12:
        return None
    return parts[1]


def key_matches(plaintext: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(plaintext), stored_hash)


def derive_key(secret_key: str, purpose: str) -> bytes:
    return hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).digest()


class Sealer:
    """Encrypts JSON-able values for storage; the key is derived per purpose."""

    def __init__(self, secret_key: str, purpose: str = "content") -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(secret_key, f"seal:{purpose}")))

    def seal(self, value: Any) -> str:
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def unseal(self, token: str) -> Any:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as e:
            raise ValueError("sealed value cannot be decrypted with this secret key") from e


def request_fingerprint(payload: Any, secret_key: str) -> str:
    """A stable keyed hash of a request body, for Idempotency-Key comparisons.

    HMAC-SHA256 under a key derived from ``NOTIFIER_SECRET_KEY``: a plain hash of a body that
    holds a 6-digit code can be brute-forced from a database dump in seconds; without the secret
    the fingerprint tells nothing about the body."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    key = derive_key(secret_key, "idempotency-fingerprint")
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()
