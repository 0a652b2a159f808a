"""Who may do what: roles, the permission matrix, and API bearer tokens.

A token belongs to one role, scoped by the name it was created with:

============================  =====  =========  =======  ======  =======
action                        admin  collector  auditor  agency  lawfirm
============================  =====  =========  =======  ======  =======
account.read                  yes    yes        yes      yes     yes
account.write                 yes    yes        no       no      no
contact.write                 yes    yes        no       yes     yes
message.write                 yes    yes        no       no      no
promise.write                 yes    yes        no       yes     yes
payment.write                 yes    yes        no       yes     yes
payment.reverse               yes    yes        no       no      no
legal_status.write            yes    yes        no       yes     yes
history.read                  yes    yes        yes      no      no
feed.read                     yes    yes        yes      yes     yes
report.read                   yes    no         yes      no      no
plugins.read                  yes    no         yes      no      no
admin                         yes    no         no       no      no
============================  =====  =========  =======  ======  =======

"yes" applies only to accounts the principal *sees* (``sees_account``):

* admin and auditor see every account;
* a collector sees the accounts of its creditor (every creditor's when it was
  created without ``--creditor``);
* an agency sees the accounts currently placed with it, a law firm those
  currently referred to it.  Any other account must look exactly like a
  missing one (404), so ``can`` is False for every action on it.

``account.write`` is every account write not named on its own: placement,
plans, disputes, complaints, consent, placement with an agency, referral,
sale, closure.  History and verification of one account are ``history.read``;
ledger-wide verification, portfolio reports and the cash forecast are
``report.read``; lists (accounts, worklist) are ``account.read`` filtered with
``sees_account``, as the feed is for ``feed.read``.  Agencies and law firms
record what happened on the accounts they hold (contacts, promises, payments,
legal status); asking Arrears to send a message (``message.write``) and taking
a payment back (``payment.reverse``) stay with the creditor's side.

``can(principal, action)`` without an account says whether the role may do the
action on some account; whenever a request concerns an account, pass it.

Tokens look like ``arr_<token_id>_<secret>``.  Only a SHA-256 digest of the
secret is stored.  A slow password hash (bcrypt, argon2) exists to make guessing
a low-entropy password from a stolen digest expensive; the secret here is 256
random bits, which no amount of guessing finds, so a fast hash loses nothing and
keeps authenticating each request cheap.  The token id (not secret: ``tokens
list`` shows it) finds the row, and the digests are compared in constant time.

Tokens are operational state, not evidence about a debt: they live in their own
table (``api_tokens``) and revocation updates the row (``revoked_at``).  The
ledger's append-only rule is about events; creation and revocation are logged.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from ledger import errors
from ledger.application import Ledger
from ledger.clock import Clock, ensure_utc
from ledger.readmodels.sqlstore import to_text
from ledger.store.operational import OperationalStore

log = structlog.get_logger("arrears.access")

ROLES = ("admin", "collector", "auditor", "agency", "lawfirm")

ACTIONS = (
    "account.read",
    "account.write",
    "contact.write",
    "message.write",
    "promise.write",
    "payment.write",
    "payment.reverse",
    "legal_status.write",
    "history.read",
    "report.read",
    "feed.read",
    "plugins.read",
    "admin",
)

_ALLOWED: dict[str, frozenset[str]] = {
    "account.read": frozenset(ROLES),
    "account.write": frozenset({"admin", "collector"}),
    "contact.write": frozenset({"admin", "collector", "agency", "lawfirm"}),
    "promise.write": frozenset({"admin", "collector", "agency", "lawfirm"}),
    "message.write": frozenset({"admin", "collector"}),
    "payment.write": frozenset({"admin", "collector", "agency", "lawfirm"}),
    "payment.reverse": frozenset({"admin", "collector"}),
    "legal_status.write": frozenset({"admin", "collector", "agency", "lawfirm"}),
    "history.read": frozenset({"admin", "collector", "auditor"}),
    "report.read": frozenset({"admin", "auditor"}),
    "feed.read": frozenset(ROLES),
    "plugins.read": frozenset({"admin", "auditor"}),
    "admin": frozenset({"admin"}),
}


@dataclass(frozen=True)
class Principal:
    """The holder of a token: a role and the name that scopes it."""

    token_id: str
    role: str
    agency: str | None = None
    firm: str | None = None
    creditor: str | None = None  # a collector without one works every creditor

    def __post_init__(self) -> None:
        _check_role(self.role)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")


def _holder(account: Mapping[str, Any]) -> tuple[Any, Any]:
    """(kind, name) of the account's holder, from the API's ``holder`` or the read model's
    ``holder_kind``/``holder_name``."""
    holder = account.get("holder")
    if isinstance(holder, Mapping):
        return holder.get("kind"), holder.get("name")
    return account.get("holder_kind"), account.get("holder_name")


def sees_account(principal: Principal, account: Mapping[str, Any]) -> bool:
    """Whether the account exists for this principal; if not, it must look missing (404)."""
    _check_role(principal.role)
    if principal.role in ("admin", "auditor"):
        return True
    if principal.role == "collector":
        return principal.creditor is None or account.get("creditor") == principal.creditor
    kind, name = _holder(account)
    if principal.role == "agency":
        return kind == "agency" and name is not None and name == principal.agency
    return kind == "law_firm" and name is not None and name == principal.firm


def can(principal: Principal, action: str, account: Mapping[str, Any] | None = None) -> bool:
    """Whether ``principal`` may do ``action`` (on ``account``, an account summary)."""
    _check_role(principal.role)
    allowed = _ALLOWED.get(action)
    if allowed is None:
        raise ValueError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
    if principal.role not in allowed:
        return False
    return account is None or sees_account(principal, account)


def require(principal: Principal, action: str, account: Mapping[str, Any] | None = None) -> None:
    """``can``, as errors: an account the principal does not see is ``account_not_found``
    (worded as for a missing one), any other refusal ``forbidden``."""
    if account is not None and not sees_account(principal, account):
        account_id = str(account.get("account_id") or account.get("id") or "")
        raise errors.AccountNotFound(f"no account {account_id}", account_id=account_id)
    if not can(principal, action, account):
        raise errors.Forbidden(
            f"{principal.role} tokens may not do {action}; ask an administrator for a token "
            "that may",
            role=principal.role,
            action=action,
        )


# ------------------------------------------------------------------- tokens

TOKEN_PREFIX = "arr"
_TOKEN_ID = re.compile(r"[0-9a-f]{16}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{32,128}")

#: The name each role must be created with, and the names it must not have.
_SCOPE: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "admin": (None, ("agency", "firm", "creditor")),
    "auditor": (None, ("agency", "firm", "creditor")),
    "collector": (None, ("agency", "firm")),
    "agency": ("agency", ("firm", "creditor")),
    "lawfirm": ("firm", ("agency", "creditor")),
}

_COLUMNS = "token_id, role, agency, firm, creditor, label, created_at, revoked_at"


def _tables(postgres: bool) -> Sequence[str]:
    return [
        "CREATE TABLE IF NOT EXISTS api_tokens ("
        "token_id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, role TEXT NOT NULL, "
        "agency TEXT, firm TEXT, creditor TEXT, label TEXT, created_at TEXT NOT NULL, "
        "revoked_at TEXT)"
    ]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _principal(row: Mapping[str, Any]) -> Principal:
    return Principal(
        token_id=row["token_id"],
        role=row["role"],
        agency=row["agency"],
        firm=row["firm"],
        creditor=row["creditor"],
    )


class TokenStore:
    """API bearer tokens in the ``api_tokens`` table of the ledger's database."""

    def __init__(self, ledger: Ledger, clock: Clock) -> None:
        self.clock = clock
        self._db = OperationalStore(ledger, "api_tokens", _tables)

    def _now(self) -> str:
        return to_text(ensure_utc(self.clock.now()))

    def create(
        self,
        role: str,
        *,
        agency: str | None = None,
        firm: str | None = None,
        creditor: str | None = None,
        label: str | None = None,
    ) -> tuple[Principal, str]:
        """A new token for ``role``: its principal and the token itself, which is not
        stored and can never be shown again."""
        if role not in ROLES:
            raise errors.InvalidChoice(
                f"unknown role {role!r}: use one of {', '.join(ROLES)}", field="role"
            )
        names = {"agency": agency, "firm": firm, "creditor": creditor}
        for field, value in names.items():
            if value is not None and not value.strip():
                raise errors.ValidationError(f"--{field} must not be empty", field=field)
        needed, refused = _SCOPE[role]
        if needed is not None and names[needed] is None:
            raise errors.ValidationError(
                f"{role} tokens need --{needed}: the name whose accounts they may work",
                field=needed,
            )
        for field in refused:
            if names[field] is not None:
                raise errors.ValidationError(
                    f"{role} tokens take no --{field}", field=field, role=role
                )
        principal = Principal(
            token_id=secrets.token_hex(8), role=role, agency=agency, firm=firm, creditor=creditor
        )
        secret = secrets.token_urlsafe(32)  # 256 random bits
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO api_tokens (token_id, secret_hash, role, agency, firm, creditor, "
                "label, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    principal.token_id,
                    _digest(secret),
                    role,
                    agency,
                    firm,
                    creditor,
                    label,
                    self._now(),
                ),
            )
        log.info("api_token_created", token_id=principal.token_id, role=role)
        return principal, f"{TOKEN_PREFIX}_{principal.token_id}_{secret}"

    def authenticate(self, token: str) -> Principal | None:
        """The principal of a valid token; None if it is malformed, unknown or revoked."""
        if not isinstance(token, str):
            return None
        parts = token.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            return None
        token_id, secret = parts[1], parts[2]
        if not _TOKEN_ID.fullmatch(token_id) or not _SECRET.fullmatch(secret):
            return None
        with self._db.transaction(write=False) as tx:
            rows = tx.query(
                f"SELECT secret_hash, {_COLUMNS} FROM api_tokens WHERE token_id = ?", (token_id,)
            )
        if not rows:
            return None
        row = rows[0]
        matches = hmac.compare_digest(row["secret_hash"], _digest(secret))
        if not matches or row["revoked_at"] is not None:
            return None
        return _principal(row)

    def require(self, token: str | None) -> Principal:
        """``authenticate``, as an ``unauthorized`` error when there is no valid token."""
        principal = self.authenticate(token) if token else None
        if principal is None:
            raise errors.TokenInvalid(
                "a valid API token is required (Authorization: Bearer arr_...); "
                "create one with 'arrears tokens create'"
            )
        return principal

    def revoke(self, token_id: str) -> bool:
        """Revoke a token from now on; False if there is no such token or it was revoked."""
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
                (self._now(), token_id),
            )
            revoked = bool(tx.cursor.rowcount == 1)
        if revoked:
            log.info("api_token_revoked", token_id=token_id)
        return revoked

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every token, oldest first, without its secret's digest."""
        with self._db.transaction(write=False) as tx:
            return tx.query(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY created_at, token_id")

    def close(self) -> None:
        """Close this thread's connection."""
        self._db.close()
