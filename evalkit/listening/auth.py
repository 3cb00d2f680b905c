"""The admin's sign-in: salted scrypt password hashes, sessions with an expiry, and lock-outs.

A hash reads ``scrypt$n$r$p$salt$digest`` (salt and digest in hex). Make one with
``python -m evalkit.listening.auth`` and put it in $EVALKIT_ADMIN_PASSWORD_HASH (or pass it in
from the app's config). A successful `sign_in` makes a session: a random token for the browser's
cookie, of which the database keeps the sha256 and the expiry. Wrong passwords are counted per
client and per account; past `SigninPolicy`'s limits sign-in is locked until a stated time,
even for the right password, so guessing cannot go faster than the policy allows.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import math
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, insert, select, update

from ..errors import ConfigError, EvalkitError
from ..store.db import write_transaction
from ..store.models import utcnow
from ..store.models_mushra import MushraAdminSession, MushraSigninFailure

__all__ = [
    "hash_password",
    "verify_password",
    "admin_password_hash",
    "check_admin",
    "ENV_VAR",
    "SESSION_HOURS_VAR",
    "ADMIN_ACCOUNT",
    "SigninPolicy",
    "SigninError",
    "LockedOut",
    "AdminSession",
    "sign_in",
    "admin_session",
    "sign_out",
]

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
        actual = hashlib.scrypt(
            str(password).encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, AttributeError):
        raise ConfigError(
            "the admin password hash is malformed; make a new one with 'python -m evalkit.listening.auth'"
        ) from None
    return hmac.compare_digest(actual, expected)


def admin_password_hash(configured: str | None = None) -> str:
    """The hash from the app's config, else $EVALKIT_ADMIN_PASSWORD_HASH; none is an error (no open admin)."""
    stored = configured or os.environ.get(ENV_VAR)
    if not stored:
        raise ConfigError(
            f"no admin password is set: put a hash in ${ENV_VAR} (make one with 'python -m evalkit.listening.auth')"
        )
    return stored


def check_admin(password: str, configured: str | None = None) -> bool:
    return verify_password(password, admin_password_hash(configured))


SESSION_HOURS_VAR = "EVALKIT_ADMIN_SESSION_HOURS"
ADMIN_ACCOUNT = "admin"
_SIGNING_IN = threading.Lock()  # one check-then-record at a time: parallel guesses cannot slip past a lock


@dataclass(frozen=True)
class SigninPolicy:
    """How many wrong passwords lock sign-in, and for how long.

    A client (address) is locked after `client_failures` failures within `window_s`, first for
    `lock_s`, doubling with each further failure up to `window_s`; an account (from anywhere)
    after `account_failures` within `window_s`, for `window_s` after the last one.
    """

    client_failures: int = 5
    account_failures: int = 20
    window_s: float = 900.0
    lock_s: float = 60.0


class SigninError(EvalkitError):
    """A refused sign-in; the message says why (and never whether the account exists)."""


class LockedOut(SigninError):
    """Too many wrong passwords: sign-in is refused until `until`."""

    def __init__(self, until: datetime, now: datetime, who: str):
        wait = max(1, math.ceil((until - now).total_seconds()))
        when = f"{wait} s" if wait < 120 else f"{math.ceil(wait / 60)} min"
        super().__init__(f"too many wrong passwords {who}; try again in {when} (at {until:%H:%M:%S} UTC)")
        self.until = until


@dataclass(frozen=True)
class AdminSession:
    """A signed-in admin: `token` goes into the browser's cookie (only `sign_in` returns it)."""

    account: str
    expires_at: datetime
    token: str | None = None


def sign_in(
    engine: Engine,
    password: str,
    client: str,
    account: str = ADMIN_ACCOUNT,
    configured: str | None = None,
    policy: SigninPolicy = SigninPolicy(),
    hours: float | None = None,
    now: datetime | None = None,
) -> AdminSession:
    """A new admin session for the right password; SigninError (LockedOut past the policy) otherwise."""
    stored = admin_password_hash(configured)  # no hash configured: a ConfigError, before anything is counted
    client, account = str(client)[:64], str(account)[:64]
    with _SIGNING_IN:
        now = now or utcnow()
        _refuse_if_locked(engine, client, account, policy, now)
        if account != ADMIN_ACCOUNT or not verify_password(password, stored):
            with write_transaction(engine) as connection:
                old = now - timedelta(seconds=policy.window_s)  # past the window a failure counts for nothing
                connection.execute(delete(MushraSigninFailure).where(MushraSigninFailure.at < old))
                connection.execute(insert(MushraSigninFailure).values(account=account, client=client, at=now))
            _refuse_if_locked(engine, client, account, policy, now)
            raise SigninError("wrong account or password")
        return _new_session(engine, client, account, hours, now)


def admin_session(engine: Engine, token: str | None, now: datetime | None = None) -> AdminSession | None:
    """The live (not expired, not signed out) session behind a cookie's token, or None."""
    if not token:
        return None
    with engine.connect() as connection:
        row = connection.execute(
            select(MushraAdminSession).where(
                MushraAdminSession.token_hash == hashlib.sha256(str(token).encode()).hexdigest()
            )
        ).first()
    if row is None or row.revoked_at is not None or row.expires_at <= (now or utcnow()):
        return None
    return AdminSession(row.account, row.expires_at)


def sign_out(engine: Engine, token: str | None) -> None:
    if not token:
        return
    with write_transaction(engine) as connection:
        connection.execute(
            update(MushraAdminSession)
            .where(
                MushraAdminSession.token_hash == hashlib.sha256(str(token).encode()).hexdigest(),
                MushraAdminSession.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        )


def _session_hours(hours: float | None) -> float:
    if hours is not None:
        return hours
    value = os.environ.get(SESSION_HOURS_VAR, "8")
    try:
        hours = float(value)
    except ValueError:
        raise ConfigError(f"${SESSION_HOURS_VAR} must be a number of hours, got {value!r}") from None
    if not 0 < hours <= 24 * 30:
        raise ConfigError(f"${SESSION_HOURS_VAR} must be between 0 and 720 hours, got {value!r}")
    return hours


def _new_session(engine: Engine, client: str, account: str, hours: float | None, now: datetime) -> AdminSession:
    token, expires = secrets.token_urlsafe(32), now + timedelta(hours=_session_hours(hours))
    with write_transaction(engine) as connection:
        connection.execute(delete(MushraSigninFailure).where(MushraSigninFailure.client == client))
        connection.execute(
            insert(MushraAdminSession).values(
                token_hash=hashlib.sha256(token.encode()).hexdigest(),
                account=account,
                client=client,
                created_at=now,
                expires_at=expires,
            )
        )
    return AdminSession(account, expires, token)


def _refuse_if_locked(engine: Engine, client: str, account: str, policy: SigninPolicy, now: datetime) -> None:
    since = now - timedelta(seconds=policy.window_s)
    with engine.connect() as connection:
        by_client = connection.execute(
            select(func.count(), func.max(MushraSigninFailure.at)).where(
                MushraSigninFailure.client == client, MushraSigninFailure.at > since
            )
        ).one()
        by_account = connection.execute(
            select(func.count(), func.max(MushraSigninFailure.at)).where(
                MushraSigninFailure.account == account, MushraSigninFailure.at > since
            )
        ).one()
    if by_client[0] >= policy.client_failures:
        doubled = policy.lock_s * 2 ** (by_client[0] - policy.client_failures)
        until = by_client[1] + timedelta(seconds=min(doubled, policy.window_s))
        if until > now:
            raise LockedOut(until, now, "from this address")
    if by_account[0] >= policy.account_failures:
        until = by_account[1] + timedelta(seconds=policy.window_s)
        if until > now:
            raise LockedOut(until, now, "for this account")


def _main() -> None:
    import argparse

    argparse.ArgumentParser(
        prog="python -m evalkit.listening.auth",
        description=f"Ask for the admin password twice and print its hash, for ${ENV_VAR}.",
    ).parse_args()
    try:
        first = getpass.getpass("admin password: ")
        again = getpass.getpass("again: ")
    except (EOFError, KeyboardInterrupt):  # no terminal and nothing piped in, or Ctrl-C: one line, no traceback
        raise SystemExit(  # on a line of its own, after the prompt
            "\nevalkit: error: no password was given; run this in a terminal (or pipe it in twice)"
        ) from None
    if first != again:
        raise SystemExit("evalkit: error: the passwords differ")
    try:
        print(hash_password(first))
    except EvalkitError as err:  # too short: the rule, not a traceback
        raise SystemExit(f"evalkit: error: {err}") from None


if __name__ == "__main__":
    _main()
