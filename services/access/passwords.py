"""Passwords of people's accounts: argon2id hashes (argon2-cffi's RFC 9106 low-memory profile),
the policy a new password must meet, and a verification that costs the same whether or not the
account exists (so timing does not tell usernames apart)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

from gridtwin.errors import InvalidArgument

MIN_LENGTH = 12
MAX_LENGTH = 256      # argon2 takes any length; a bound keeps a request from buying CPU

_HASHER = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
_DUMMY = _HASHER.hash("not the password of any account")


def check_policy(password: str, field: str = "password") -> str:
    if len(password) < MIN_LENGTH:
        raise InvalidArgument(field, f"at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidArgument(field, f"at most {MAX_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches; `stored_hash` None (no such account) costs the same and fails."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        _HASHER.verify(stored_hash or _DUMMY, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)
