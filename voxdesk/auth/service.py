"""Authentication, sessions and audit on the database.

Passwords are hashed with argon2id. Session tokens are 256-bit random strings; only their SHA-256 is stored, so a
database leak does not leak live sessions. Synchronous; call from FastAPI's thread pool or ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, SystemClock
from core.db import session_scope
from core.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    StorageError,
)
from voxdesk.auth.roles import ROLES, Role
from voxdesk.auth.tables import AuditRow, SessionRow, UserRow

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_SIP_USER = re.compile(r"^[A-Za-z0-9+._-]{1,64}$")
MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True)
class Principal:
    """The authenticated user behind a request."""

    user_id: int
    username: str
    display_name: str
    roles: tuple[Role, ...]
    must_change_password: bool = False
    sip_user: str | None = None
    """User part of the agent's softphone SIP URI (``agent101``), when the user takes calls."""


@dataclass(frozen=True)
class AuditEntry:
    """One audit-log record."""

    id: int
    at: datetime
    username: str
    action: str
    resource_type: str
    resource_id: str | None
    client: str | None
    data: dict[str, Any]


class AuthService:
    """Users, logins, sessions and the audit log."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        clock: Clock | None = None,
        session_ttl_s: int = 8 * 3600,
        max_failed_logins: int = 5,
        lockout_s: int = 300,
    ) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()
        self._ttl = timedelta(seconds=session_ttl_s)
        self._max_failed = max_failed_logins
        self._lockout = timedelta(seconds=lockout_s)
        self._hasher = PasswordHasher()
        # Verifying against a dummy hash for unknown users keeps the response time the same (no user probing).
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    # --- users ---------------------------------------------------------------------------------------------

    def create_user(
        self,
        username: str,
        password: str,
        roles: Sequence[str],
        *,
        display_name: str = "",
        must_change_password: bool = False,
        sip_user: str | None = None,
    ) -> Principal:
        """Add a user; raises :class:`InvalidInputError` (bad name, weak password, unknown role, bad SIP user) or
        :class:`ConflictError` (name or SIP user taken)."""
        username = username.strip().lower()
        if not _USERNAME.match(username):
            raise InvalidInputError("username must be 2-64 lowercase letters, digits, '.', '_' or '-'")
        _check_password(password)
        checked = _check_roles(roles)
        sip = _check_sip_user(sip_user)
        try:
            with self._session(write=True) as s:
                row = UserRow(
                    sip_user=sip,
                    username=username,
                    display_name=display_name or username,
                    password_hash=self._hasher.hash(password),
                    roles=list(checked),
                    must_change_password=must_change_password,
                    created_at=self._clock.now(),
                )
                s.add(row)
                s.flush()
                return _principal(row)
        except StorageError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise ConflictError("username or SIP user already exists") from exc
            raise

    def count_users(self) -> int:
        """Number of users."""
        with self._session() as s:
            return s.scalar(select(func.count()).select_from(UserRow)) or 0

    def list_users(self) -> list[Principal]:
        """All users, by name."""
        with self._session() as s:
            return [_principal(r) for r in s.scalars(select(UserRow).order_by(UserRow.username))]

    def set_roles(self, username: str, roles: Sequence[str]) -> Principal:
        """Replace a user's roles."""
        checked = _check_roles(roles)
        with self._session(write=True) as s:
            row = self._user(s, username)
            row.roles = list(checked)
            return _principal(row)

    def set_sip_user(self, username: str, sip_user: str | None) -> Principal:
        """Set (or clear, with ``None``) the SIP user of a user's softphone; raises :class:`ConflictError` when
        another user has it and :class:`InvalidInputError` for a malformed one."""
        sip = _check_sip_user(sip_user)
        try:
            with self._session(write=True) as s:
                row = self._user(s, username)
                row.sip_user = sip
                s.flush()
                return _principal(row)
        except StorageError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise ConflictError("SIP user already belongs to another user") from exc
            raise

    def by_sip_user(self, sip_user: str) -> Principal | None:
        """The active user whose softphone is ``sip_user``, if any."""
        with self._session() as s:
            row = s.scalars(select(UserRow).where(UserRow.sip_user == sip_user, UserRow.active.is_(True))).first()
            return _principal(row) if row is not None else None

    def set_password(self, username: str, password: str) -> None:
        """Set a new password and revoke every existing session of the user."""
        _check_password(password)
        with self._session(write=True) as s:
            row = self._user(s, username)
            row.password_hash = self._hasher.hash(password)
            row.must_change_password = False
            row.failed_logins, row.locked_until = 0, None
            s.execute(update(SessionRow).where(SessionRow.user_id == row.id).values(revoked=True))

    def set_active(self, username: str, active: bool) -> None:
        """Enable or disable a user; disabling revokes their sessions."""
        with self._session(write=True) as s:
            row = self._user(s, username)
            row.active = active
            if not active:
                s.execute(update(SessionRow).where(SessionRow.user_id == row.id).values(revoked=True))

    def ensure_admin(self) -> str | None:
        """On an empty user table, create ``admin`` with a random password and return it (shown once);
        otherwise return ``None``."""
        if self.count_users() > 0:
            return None
        password = secrets.token_urlsafe(12)
        self.create_user("admin", password, ["admin"], display_name="Administrator", must_change_password=True)
        return password

    # --- logins and sessions -------------------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> Principal:
        """Check a password; raises :class:`AuthenticationError` with one message for every failure cause.

        After ``max_failed_logins`` failures the account is locked for ``lockout_s`` seconds.
        """
        now = self._clock.now()
        with self._session(write=True) as s:
            row = s.scalars(select(UserRow).where(UserRow.username == username.strip().lower())).first()
            if row is None:
                _verify(self._hasher, self._dummy_hash, password)
                raise AuthenticationError("invalid username or password")
            if not row.active or (row.locked_until is not None and row.locked_until > now):
                _verify(self._hasher, self._dummy_hash, password)
                raise AuthenticationError("invalid username or password")
            if not _verify(self._hasher, row.password_hash, password):
                row.failed_logins += 1
                if row.failed_logins >= self._max_failed:
                    row.locked_until, row.failed_logins = now + self._lockout, 0
                s.commit()
                raise AuthenticationError("invalid username or password")
            if self._hasher.check_needs_rehash(row.password_hash):
                row.password_hash = self._hasher.hash(password)
            row.failed_logins, row.locked_until, row.last_login_at = 0, None, now
            return _principal(row)

    def create_session(
        self, principal: Principal, *, kind: str = "session", ttl_s: int | None = None, label: str = ""
    ) -> str:
        """Issue a token for ``principal``; returns the token (store it client-side; it is not kept here)."""
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        ttl = timedelta(seconds=ttl_s) if ttl_s is not None else self._ttl
        with self._session(write=True) as s:
            s.add(
                SessionRow(
                    token_hash=_digest(token),
                    user_id=principal.user_id,
                    kind=kind,
                    label=label,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )
        return token

    def resolve(self, token: str) -> Principal:
        """The user behind a live token; raises :class:`AuthenticationError` for unknown/expired/revoked ones."""
        if not token or len(token) > 256:
            raise AuthenticationError("not logged in")
        with self._session() as s:
            found = s.execute(
                select(SessionRow, UserRow)
                .join(UserRow, UserRow.id == SessionRow.user_id)
                .where(SessionRow.token_hash == _digest(token))
            ).first()
            if found is None:
                raise AuthenticationError("not logged in")
            sess, user = found
            if sess.revoked or sess.expires_at <= self._clock.now() or not user.active:
                raise AuthenticationError("session expired")
            return _principal(user)

    def revoke(self, token: str) -> None:
        """End a session (logout). Unknown tokens are ignored."""
        with self._session(write=True) as s:
            s.execute(update(SessionRow).where(SessionRow.token_hash == _digest(token)).values(revoked=True))

    # --- audit ---------------------------------------------------------------------------------------------

    def audit(
        self,
        principal: Principal | None,
        action: str,
        resource_type: str,
        resource_id: str | None = None,
        *,
        client: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Record a sensitive action (a profile read, an export, an import, a recording played)."""
        with self._session(write=True) as s:
            s.add(
                AuditRow(
                    at=self._clock.now(),
                    username=principal.username if principal else "-",
                    action=action,
                    resource_type=resource_type,
                    resource_id=resource_id,
                    client=client,
                    data=data or {},
                )
            )

    def audit_entries(
        self, *, limit: int = 100, offset: int = 0, resource_type: str | None = None, resource_id: str | None = None
    ) -> list[AuditEntry]:
        """Newest audit records first."""
        query = select(AuditRow).order_by(AuditRow.id.desc()).offset(offset).limit(max(1, min(limit, 1000)))
        if resource_type:
            query = query.where(AuditRow.resource_type == resource_type)
        if resource_id:
            query = query.where(AuditRow.resource_id == resource_id)
        with self._session() as s:
            return [
                AuditEntry(r.id, r.at, r.username, r.action, r.resource_type, r.resource_id, r.client, r.data)
                for r in s.scalars(query)
            ]

    # --- helpers -------------------------------------------------------------------------------------------

    def _session(self, *, write: bool = False) -> AbstractContextManager[Session]:
        return session_scope(self._sessions, write=write)

    @staticmethod
    def _user(s: Session, username: str) -> UserRow:
        row = s.scalars(select(UserRow).where(UserRow.username == username.strip().lower())).first()
        if row is None:
            raise NotFoundError("unknown user")
        return row


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _verify(hasher: PasswordHasher, hashed: str, password: str) -> bool:
    try:
        return hasher.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH or len(password) > 256:
        raise InvalidInputError(f"password must be {MIN_PASSWORD_LENGTH}-256 characters")


def _check_roles(roles: Sequence[str]) -> tuple[Role, ...]:
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise InvalidInputError("roles must be a non-empty subset of " + ", ".join(ROLES))
    return tuple(r for r in ROLES if r in roles)


def _check_sip_user(sip_user: str | None) -> str | None:
    if sip_user is None or not sip_user.strip():
        return None
    value = sip_user.strip()
    if value.startswith("sip:"):
        value = value[4:].split("@", 1)[0]
    if not _SIP_USER.match(value):
        raise InvalidInputError("SIP user must be 1-64 letters, digits, '+', '.', '_' or '-'")
    return value


def _principal(row: UserRow) -> Principal:
    roles = tuple(r for r in ROLES if r in (row.roles or []))
    return Principal(row.id, row.username, row.display_name, roles, row.must_change_password, row.sip_user)
