"""Hashes of secrets: slow, salted scrypt for passwords; a keyed HMAC for PINs.

Passwords (agents) are checked once per login: scrypt makes an offline guess expensive.
A 4-8 digit PIN has at most 10^8 values, so no affordable KDF cost protects it; what does is a
secret key (a pepper) held outside the database (`HOTLINE_PIN_KEY`). A PIN hash is therefore
`hmac-sha256$kid$salt$digest` = HMAC-SHA256(key, salt + PIN), a few microseconds to check on the
call path; `kid` names the key without revealing it. Older PIN hashes are scrypt: they still
verify, and `pin_needs_rehash` says to replace them."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PIN_SCHEME = "hmac-sha256"

# n=2**13, r=8 costs 8 MiB and ~15 ms on this machine class (2 cores): slow for a guesser, and
# paid once per console login (never on the call path: PINs use hash_pin).
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


def pin_key_id(key: bytes) -> str:
    """The key's public name: 8 hex digits of a hash of it (tells keys apart, reveals nothing usable)."""
    return hashlib.sha256(b"hotline pin key id:" + key).hexdigest()[:8]


def hash_pin(pin: str, key: bytes) -> str:
    """Return `hmac-sha256$kid$salt$digest` for `pin` under `key` (a secret held outside the database)."""
    if not key:
        raise ValueError("hash_pin: the PIN key is empty")
    salt = secrets.token_bytes(16)
    digest = hmac.new(key, salt + pin.encode("utf-8"), hashlib.sha256).digest()
    return "$".join([PIN_SCHEME, pin_key_id(key), _b64(salt), _b64(digest)])


def verify_pin_hash(pin: str, stored: str, key: bytes) -> bool:
    """True when `pin` matches `stored`: an HMAC hash made with `key`, or an older scrypt hash.

    False for a malformed hash, and for an HMAC hash made with another key (it cannot be checked).
    """
    if stored.startswith("scrypt$"):
        return verify_secret(pin, stored)
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != PIN_SCHEME or not key or parts[1] != pin_key_id(key):
        return False
    try:
        salt = base64.urlsafe_b64decode(parts[2] + "==")
        expected = base64.urlsafe_b64decode(parts[3] + "==")
    except (ValueError, TypeError):
        return False
    got = hmac.new(key, salt + pin.encode("utf-8"), hashlib.sha256).digest()
    return hmac.compare_digest(got, expected)


def pin_needs_rehash(stored: str, key: bytes) -> bool:
    """True for an older scrypt PIN hash (replace it with `hash_pin` once the PIN is known to be right).

    False for an HMAC hash, whatever its key: one made with another key cannot be verified, hence never rehashed.
    """
    return stored.startswith("scrypt$")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
