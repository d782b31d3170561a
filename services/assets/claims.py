"""Device claim codes: how an edge agent gets its credential without anyone copying a secret.

An operator creates the device through the AssetService (`CreateDeviceClaim`) and hands the
one-time code to the installer, who puts it in the agent's configuration; the agent exchanges it
(`ClaimDevice`) for the device's credential, which only the agent ever sees.

A code is 20 symbols of Crockford's base-32 alphabet (100 random bits), shown in groups of four:
`7KQ2-M9XD-3HFA-0RTW-PZ4C`. It is typed by people, so reading it forgives case, dashes, spaces and
the look-alikes Crockford maps (O → 0, I and L → 1). Only the SHA-256 of the normalized code is
stored; a code works once, until it expires. 100 bits cannot be guessed by trying, so the
exchange needs no other credential.
"""

from __future__ import annotations

import hashlib
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"   # Crockford base 32: no I, L, O, U
SYMBOLS = 20
GROUP = 4
DEFAULT_TTL_S = 7 * 86_400.0
MAX_TTL_S = 30 * 86_400.0
_LOOK_ALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_claim_code() -> str:
    """A fresh random code, grouped for reading aloud."""
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(SYMBOLS))
    return "-".join(symbols[i:i + GROUP] for i in range(0, SYMBOLS, GROUP))


def normalize(code: str) -> str | None:
    """The code's 20 symbols, or None when `code` cannot be one."""
    symbols = "".join(code.split()).replace("-", "").upper().translate(_LOOK_ALIKES)
    if len(symbols) != SYMBOLS or any(c not in ALPHABET for c in symbols):
        return None
    return symbols


def code_sha256(code: str) -> bytes | None:
    """What is stored for `code` (the SHA-256 of its normalized symbols), or None when malformed."""
    symbols = normalize(code)
    return None if symbols is None else hashlib.sha256(symbols.encode()).digest()
