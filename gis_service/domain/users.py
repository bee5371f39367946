"""Users, bearer tokens and passwords. Tokens are shown once; only their SHA-256 is stored.

Two kinds of token: the one ``gis-service users add`` prints (``app_user.token_hash``, no
expiry, for scripts and the CLI) and those ``POST /auth/login`` issues (``auth_token``, expire
after ``GIS_AUTH_LOGIN_TOKEN_HOURS``). Passwords are scrypt hashes in ``user_password``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.db.listen import Listener
from gis_service.db.models import AdminDivision, AppUser, AuthFailure, AuthToken, UserPassword
from gis_service.domain.scope import Principal, in_scope
from gis_service.errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound
from gis_service.types import Role

TOKEN_PREFIX = "gis_"  # noqa: S105 - a prefix, not a secret
#: scrypt cost: 2**14 x 8 x 1 (16 MiB, tens of ms): RFC 7914's interactive-login setting.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD, MAX_PASSWORD = 8, 256


def new_token() -> str:
    """A fresh random bearer token (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 hex of a token: what the database keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64), salted per user."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


#: Verified against when the login does not exist, so both failures cost the same time.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored`` (constant time; a missing hash never matches)."""
    try:
        kind, n, r, p, salt, digest = (stored or _DUMMY_HASH).split("$")
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 1024 * 1024,
            dklen=len(want),
        )
    except (ValueError, TypeError):
        return False
    return kind == "scrypt" and stored is not None and hmac.compare_digest(got, want)


def check_password_rules(password: str) -> None:
    """Refuse passwords too short or too long to be sensible (422 naming the field)."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            detail=f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            detail_zh=f"密码长度须为 {MIN_PASSWORD}–{MAX_PASSWORD} 个字符",
            fields=[FieldProblem("body.password", "length")],
        )


@dataclass(frozen=True)
class NewUser:
    """A created user and the one copy of its token."""

    id: int
    login: str
    role: Role
    scope_code: str | None
    token: str


@dataclass(frozen=True)
class TokenOwner:
    """Who holds a token, and until when it is valid (None: CLI token, no expiry)."""

    principal: Principal
    expires_at: dt.datetime | None
    display_name: str | None = None


_LOOKUP = text(
    """
    SELECT u.id, u.login, u.role, u.scope_code, u.display_name, NULL::timestamptz AS expires_at
    FROM app_user u WHERE u.token_hash = :h AND u.active
    UNION ALL
    SELECT u.id, u.login, u.role, u.scope_code, u.display_name, t.expires_at
    FROM auth_token t JOIN app_user u ON u.id = t.user_id
    WHERE t.token_hash = :h AND u.active AND t.expires_at > now()
    LIMIT 1
    """
)


async def lookup_token(conn: AsyncConnection, token: str) -> TokenOwner | None:
    """The active user holding ``token`` (a CLI token or an unexpired login token), or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    row = (await conn.execute(_LOOKUP, {"h": hash_token(token)})).one_or_none()
    if row is None:
        return None
    principal = Principal(
        login=row.login, role=Role(row.role), scope_code=row.scope_code, user_id=row.id
    )
    return TokenOwner(principal, row.expires_at, row.display_name)


async def authenticate(conn: AsyncConnection, token: str) -> Principal | None:
    """The active user holding ``token``, or None."""
    owner = await lookup_token(conn, token)
    return None if owner is None else owner.principal


async def create_user(
    conn: AsyncConnection,
    login: str,
    role: Role,
    scope_code: str | None,
    *,
    by: Principal | None = None,
    display_name: str | None = None,
    source: str | None = None,
) -> NewUser:
    """Create a user with a fresh token.

    Args:
        conn: connection inside a transaction.
        login: unique login name.
        role: the user's role.
        scope_code: admin code of the user's area; None (nationwide) only for admins.
        by: the admin creating it (None for the CLI, which runs with the server's rights);
            an admin may only create users inside their own scope.
        display_name: optional human name.
        source: provenance to record (default: the creating admin, or ``cli``).
    """
    if by is not None and by.role != Role.admin:
        raise Forbidden(detail="only admins create users", detail_zh="仅管理员可创建用户")
    if scope_code is None and role != Role.admin:
        raise InvalidInput(
            detail="a scope (admin code) is required for non-admin users",
            detail_zh="非管理员用户必须指定管辖区划代码",
        )
    if scope_code is None and by is not None and by.scope_code is not None:
        raise NotFound(detail="scope not found", detail_zh="区划不存在")
    if scope_code is not None:
        stmt = select(AdminDivision.code).where(AdminDivision.code == scope_code)
        if by is not None:
            stmt = stmt.where(in_scope(AdminDivision.code, by))
        if (await conn.execute(stmt)).scalar_one_or_none() is None:
            raise NotFound(
                detail=f"admin code {scope_code} not found",
                detail_zh=f"区划代码 {scope_code} 不存在",
            )
    exists = await conn.execute(select(AppUser.id).where(AppUser.login == login))
    if exists.scalar_one_or_none() is not None:
        raise Conflict(detail=f"login {login!r} exists", detail_zh=f"用户名 {login} 已存在")
    token = new_token()
    user_id = (
        await conn.execute(
            insert(AppUser)
            .values(
                login=login,
                role=role.value,
                scope_code=scope_code,
                token_hash=hash_token(token),
                display_name=display_name,
                source=source or (f"user:{by.login}" if by else "cli"),
            )
            .returning(AppUser.id)
        )
    ).scalar_one()
    return NewUser(id=user_id, login=login, role=role, scope_code=scope_code, token=token)


async def list_users(conn: AsyncConnection, principal: Principal) -> list[dict[str, object]]:
    """Users whose scope lies inside the caller's (admins only)."""
    if principal.role != Role.admin:
        raise Forbidden(detail="only admins list users", detail_zh="仅管理员可查看用户")
    stmt = select(
        AppUser.id, AppUser.login, AppUser.role, AppUser.scope_code, AppUser.active
    ).order_by(AppUser.login)
    if principal.scope_code is not None:
        stmt = stmt.where(in_scope(AppUser.scope_code, principal))
    return [dict(r._mapping) for r in await conn.execute(stmt)]


async def set_password(conn: AsyncConnection, login: str, password: str) -> None:
    """Set ``login``'s password; ends the login sessions (tokens) issued with the old one."""
    check_password_rules(password)
    user_id = (
        await conn.execute(select(AppUser.id).where(AppUser.login == login))
    ).scalar_one_or_none()
    if user_id is None:
        raise NotFound(detail=f"no user {login!r}", detail_zh=f"用户 {login} 不存在")
    hashed = await asyncio.to_thread(hash_password, password)
    stmt = pg_insert(UserPassword).values(user_id=user_id, hash=hashed)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[UserPassword.user_id],
            set_={"hash": stmt.excluded.hash, "changed_at": stmt.excluded.changed_at},
        )
    )
    await conn.execute(delete(AuthToken).where(AuthToken.user_id == user_id))
    await conn.execute(delete(AuthFailure).where(AuthFailure.login == login))


@dataclass(frozen=True)
class LoginPolicy:
    """Token lifetime and the failed-login throttle (BAD_INPUTS E10)."""

    token_hours: float = 12.0
    max_failures: int = 5
    max_failures_per_address: int = 20
    window_s: int = 900


@dataclass(frozen=True)
class LoginOutcome:
    """A login attempt: a token and its owner, a refusal, or how long to wait."""

    owner: TokenOwner | None = None
    token: str | None = None
    retry_after: int | None = None


_FAILURES = text(
    """
    SELECT count(*) FILTER (WHERE login = :login) AS n_login,
           min(at) FILTER (WHERE login = :login) AS first_login,
           count(*) FILTER (WHERE address = :address) AS n_address,
           min(at) FILTER (WHERE address = :address) AS first_address,
           now() AS now
    FROM auth_failure
    WHERE at > now() - make_interval(secs => :window) AND (login = :login OR address = :address)
    """
)
_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('gis-login:' || :l))")
_ACCOUNT = text(
    """
    SELECT u.id, u.login, u.role, u.scope_code, u.display_name, p.hash
    FROM app_user u LEFT JOIN user_password p ON p.user_id = u.id
    WHERE u.login = :login AND u.active
    """
)


async def _throttled(
    conn: AsyncConnection, login: str, address: str, policy: LoginPolicy
) -> int | None:
    """Seconds until this login or address may try again, or None when it may now."""
    row = (
        await conn.execute(
            _FAILURES, {"login": login, "address": address, "window": policy.window_s}
        )
    ).one()
    waits = [
        (first + dt.timedelta(seconds=policy.window_s) - row.now).total_seconds()
        for n, limit, first in (
            (row.n_login, policy.max_failures, row.first_login),
            (row.n_address, policy.max_failures_per_address, row.first_address),
        )
        if n >= limit and first is not None
    ]
    return max(1, math.ceil(max(waits))) if waits else None


async def login_with_password(
    conn: AsyncConnection, login: str, password: str, address: str, policy: LoginPolicy
) -> LoginOutcome:
    """Check a login and password; on success issue an expiring token.

    Failures are recorded (the caller commits them before answering 401); attempts for the
    same login are serialised so a burst cannot slip past the limit, and refused before the
    (deliberately slow) password hash when over it. An unknown login and a wrong password
    take the same path and time.
    """
    login = login[:64]
    address = address[:64]
    await conn.execute(_LOCK, {"l": login})
    wait = await _throttled(conn, login, address, policy)
    if wait is not None:
        return LoginOutcome(retry_after=wait)
    row = (await conn.execute(_ACCOUNT, {"login": login})).one_or_none()
    ok = await asyncio.to_thread(verify_password, password, None if row is None else row.hash)
    if row is None or not ok:
        await conn.execute(insert(AuthFailure).values(login=login, address=address))
        return LoginOutcome()
    await conn.execute(delete(AuthFailure).where(AuthFailure.login == login))
    await conn.execute(
        delete(AuthToken).where(AuthToken.user_id == row.id, AuthToken.expires_at <= text("now()"))
    )
    token = new_token()
    expires_at = (
        await conn.execute(
            insert(AuthToken)
            .values(
                user_id=row.id,
                token_hash=hash_token(token),
                expires_at=text("now() + make_interval(secs => :secs)").bindparams(
                    secs=policy.token_hours * 3600
                ),
            )
            .returning(AuthToken.expires_at)
        )
    ).scalar_one()
    principal = Principal(
        login=row.login, role=Role(row.role), scope_code=row.scope_code, user_id=row.id
    )
    return LoginOutcome(owner=TokenOwner(principal, expires_at, row.display_name), token=token)


#: Channel of migration 0010's triggers on ``app_user``, ``auth_token`` and ``user_password``.
AUTH_CHANNEL = "gis_auth_change"


class PrincipalCache:
    """Token hash → owner, per worker, emptied on every committed change to users or tokens.

    Freshness is strict (see :class:`~gis_service.db.listen.Listener`): before an entry is
    trusted, one shared ``SELECT 1`` on the listening connection makes sure every change
    committed before the request arrived has been applied, so ``users disable`` or a
    password change takes effect on the very next request. While the feed is down the cache
    is bypassed (every request looks its token up). Unknown tokens are never cached.
    """

    def __init__(self, listener: Listener, *, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, TokenOwner] = {}
        self._generation = 0
        #: The worker's change feed (shared with its other caches: one round serves all).
        self.listener = listener

    def _changed(self, _payload: str = "") -> None:
        self._entries.clear()
        self._generation += 1

    async def open(self) -> None:
        """Start listening (a failure leaves the cache bypassed until a retry succeeds)."""
        await self.listener.subscribe({AUTH_CHANNEL: self._changed}, self._changed)

    async def resolve(
        self,
        token: str,
        lookup: Callable[[], Awaitable[TokenOwner | None]],
        *,
        after: int | None = None,
    ) -> TokenOwner | None:
        """The owner of ``token``: from the cache when fresh, else from ``lookup()``.

        ``after`` is the request's :meth:`~gis_service.db.listen.Listener.ticket`.
        """
        key = hash_token(token)
        fresh = await self.listener.check(after)
        if fresh:
            hit = self._entries.get(key)
            if hit is not None and (
                hit.expires_at is None or hit.expires_at > dt.datetime.now(dt.UTC)
            ):
                return hit
        generation = self._generation
        owner = await lookup()
        # A change announced while we looked may have come after our read: do not keep it.
        if owner is not None and fresh and generation == self._generation:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = owner
        return owner
