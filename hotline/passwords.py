"""Slow, salted hashes for PINs and passwords (scrypt from the standard library)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# n=2**13, r=8 costs 8 MiB and ~15 ms on this machine class (2 cores): slow for a guesser,
# well under the 50 ms a verification may take inside a webhook.
N, R, P = 2**13, 8, 1


def hash_secret(secret: str, n: int = N, r: int = R, p: int = P) -> str:
    """Return `scrypt$n$r$p$salt$hash` for `secret`."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)
    return "$".join(["scrypt", str(n), str(r), str(p), _b64(salt), _b64(digest)])


def verify_secret(secret: str, stored: str) -> bool:
    """True when `secret` matches the stored hash; False for any malformed hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(digest + "==")
        got = hashlib.scrypt(
            secret.encode("utf-8"),
            salt=base64.urlsafe_b64decode(salt + "=="),
            n=int(n), r=int(r), p=int(p), maxmem=64 * 1024 * 1024, dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
