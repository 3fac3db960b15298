"""Staff accounts: creation and password checks (Argon2id through argon2-cffi).

A staff member belongs to one service and sees only its rows (``support`` reads, ``admin``
also acts); a ``platform_admin`` belongs to none and sees every service. The console limits
every read and action through :func:`notifier.ownership.scope_for` with :attr:`Staff.scope`,
the same mechanism as an API key's.

A wrong email and a wrong password get the same answer and cost the same time (an unknown
account is checked against a dummy hash), so the sign-in form does not reveal who has an account.
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.db.models import DEFAULT_SERVICE_ID, utcnow
from notifier.ownership import scope_for
from notifier.support.models import StaffAccount, StaffRole

MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-real-password-only-for-equal-timing")


class StaffAccountError(ValueError):
    """A staff account that cannot be created as asked (bad email, weak password, duplicate)."""


@dataclass(frozen=True)
class Staff:
    """The signed-in person, as the console's routes see them."""

    id: str
    email: str
    role: StaffRole
    session_id: str
    csrf_token: str
    service_id: str | None = None  # None: a platform admin
    service_name: str | None = None

    @property
    def is_admin(self) -> bool:
        """May act (resend, lift) and read the audit log, within :attr:`scope`."""
        return self.role in (StaffRole.ADMIN, StaffRole.PLATFORM_ADMIN)

    @property
    def is_platform_admin(self) -> bool:
        return self.role == StaffRole.PLATFORM_ADMIN

    @property
    def scope(self) -> str | None:
        """The service whose rows this person sees (:mod:`notifier.ownership`)."""
        return scope_for(self.service_id, platform_admin=self.is_platform_admin)


def normalise_email(email: str) -> str:
    value = email.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or len(value) > 320 or " " in value:
        raise StaffAccountError(f"{email!r} is not an email address")
    return value


def create_staff(
    session: Session,
    email: str,
    role: StaffRole,
    password: str,
    service_id: str | None = DEFAULT_SERVICE_ID,
) -> StaffAccount:
    """A new account of ``service_id`` (the default service unless named); a platform admin
    belongs to no service, and every other role to exactly one."""
    role = StaffRole(role)
    if role == StaffRole.PLATFORM_ADMIN:
        service_id = None
    elif service_id is None:
        raise StaffAccountError(f"a {role} account belongs to a service: name one")
    address = normalise_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffAccountError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if find_by_email(session, address) is not None:
        raise StaffAccountError(f"a staff account for {address} already exists")
    account = StaffAccount(
        email=address,
        role=role.value,
        service_id=service_id,
        password_hash=_hasher.hash(password),
    )
    session.add(account)
    session.flush()
    return account


def set_password(session: Session, email: str, password: str) -> StaffAccount:
    account = find_by_email(session, normalise_email(email))
    if account is None:
        raise StaffAccountError(f"no staff account for {email}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffAccountError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    account.password_hash = _hasher.hash(password)
    return account


def list_staff(session: Session) -> list[StaffAccount]:
    return list(session.scalars(select(StaffAccount).order_by(StaffAccount.email)))


def find_by_email(session: Session, email: str) -> StaffAccount | None:
    return session.scalars(select(StaffAccount).where(StaffAccount.email == email)).first()


def check_password(session: Session, email: str, password: str) -> StaffAccount | None:
    """The active account if ``password`` is right, else None (same cost either way)."""
    try:
        address = normalise_email(email)
    except StaffAccountError:
        address = ""
    account = find_by_email(session, address) if address else None
    if account is None or account.disabled_at is not None:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(account.password_hash, password):
        return None
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = _hasher.hash(password)
    account.last_sign_in_at = utcnow()
    return account


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
