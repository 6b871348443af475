"""Secrets the gateway issues (virtual keys, admin API tokens): made once, shown once,
stored only as a hash, found again by that hash.

They are 256-bit random tokens, so a plain SHA-256 is the right hash (a slow password
hash buys nothing against brute force on that much entropy, and would cost every lookup).
Each kind has its own prefix, so that a credential says what it is before any lookup
(`sg-` a virtual key, `sga-` an admin API token).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

SHOWN_PREFIX_CHARS = 10  # what listings show of a secret, to tell them apart


def hash_secret(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    raw: str  # returned to the caller once, never stored
    hash: str
    shown_prefix: str


def issue_secret(prefix: str) -> IssuedSecret:
    raw = prefix + secrets.token_urlsafe(32)
    return IssuedSecret(raw, hash_secret(raw), raw[:SHOWN_PREFIX_CHARS])
