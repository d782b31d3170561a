"""Random secrets (tokens, one-time codes) and their stored form. Tokens and one-time codes are random (256 / 160 bits),
so a fast hash (SHA-256) stored in place of each is enough; passwords are not, and get argon2id
(passwords.py)."""

from __future__ import annotations

import base64
import hashlib
import secrets as _random

# Prefixes say what a leaked secret is (secret scanners match them) and never change its strength.
PERSONAL_TOKEN, SESSION_TOKEN, CLIENT_TOKEN, CLIENT_SECRET = "gta_", "gts_", "gtc_", "gtcs_"


def new_secret(prefix: str) -> str:
    return prefix + _random.token_urlsafe(32)


def sha256(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_code() -> str:
    """A one-time code for a link or to type: 32 base32 symbols (160 bits), grouped by 4."""
    raw = base64.b32encode(_random.token_bytes(20)).decode()
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def code_sha256(code: str) -> bytes:
    """The stored form of a code as typed: case, spaces and dashes do not matter."""
    return sha256("".join(code.upper().split()).replace("-", ""))


def new_id(prefix: str) -> str:
    return f"{prefix}-{_random.token_hex(8)}"
