"""The optional bearer token: only its sha256 is on the Pi, compared in constant time.

The overlay (and so app.env) is served over TFTP to anyone on the LAN, so it carries
FIRECORE_TOKEN_SHA256, never the token. A client presents the token itself
(``Authorization: Bearer <token>``, or ``?token=`` for a browser); the service hashes what it got
and compares digests with ``hmac.compare_digest``.
"""

import hashlib
import hmac
from typing import Optional


def bearer(header: Optional[str]) -> Optional[str]:
    """The token of an ``Authorization: Bearer <token>`` header, if that is what it is."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def allowed(expected_sha256: str, presented: Optional[str]) -> bool:
    """True when no token is configured, or the presented one hashes to the configured digest."""
    if not expected_sha256:
        return True
    if presented is None:
        return False
    digest = hashlib.sha256(presented.encode("utf-8")).hexdigest()
    return hmac.compare_digest(digest, expected_sha256)
