"""The admin password: salted scrypt hashes, compared in constant time; never stored in clear.

A hash reads ``scrypt$n$r$p$salt$digest`` (salt and digest in hex). Make one with
``python -m evalkit.mushra.auth`` and put it in $EVALKIT_ADMIN_PASSWORD_HASH (or pass it in
from the app's config).
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import secrets

from ..errors import ConfigError

__all__ = ["hash_password", "verify_password", "admin_password_hash", "check_admin", "ENV_VAR"]

ENV_VAR = "EVALKIT_ADMIN_PASSWORD_HASH"
_N, _R, _P = 2**14, 8, 1  # scrypt's interactive-login parameters: ~16 MiB and ~50 ms
_MIN_LENGTH = 8


def hash_password(password: str, n: int = _N, r: int = _R, p: int = _P) -> str:
    if not isinstance(password, str) or len(password) < _MIN_LENGTH:
        raise ConfigError(f"an admin password needs at least {_MIN_LENGTH} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches the stored hash; a malformed hash raises, naming the problem."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            raise ValueError
        expected = bytes.fromhex(digest)
        actual = hashlib.scrypt(str(password).encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (ValueError, AttributeError):
        raise ConfigError("the admin password hash is malformed; make a new one with "
                          "'python -m evalkit.mushra.auth'") from None
    return hmac.compare_digest(actual, expected)


def admin_password_hash(configured: str | None = None) -> str:
    """The hash from the app's config, else $EVALKIT_ADMIN_PASSWORD_HASH; none is an error (no open admin)."""
    stored = configured or os.environ.get(ENV_VAR)
    if not stored:
        raise ConfigError(f"no admin password is set: put a hash in ${ENV_VAR} "
                          "(make one with 'python -m evalkit.mushra.auth')")
    return stored


def check_admin(password: str, configured: str | None = None) -> bool:
    return verify_password(password, admin_password_hash(configured))


def _main() -> None:
    first = getpass.getpass("admin password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("the passwords differ")
    print(hash_password(first))


if __name__ == "__main__":
    _main()
