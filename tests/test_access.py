"""Who may do what through the API: the role x action matrix, scopes, and bearer tokens.

An agency or a law firm sees only the accounts it currently holds; any other
account looks missing.  Tokens are stored as digests only, and a revoked or
malformed token authenticates nobody.  The ``arrears tokens`` commands run
in-process through click's runner.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import START

import cli
from ledger import access, errors
from ledger.access import ACTIONS, ROLES, Principal, TokenStore, can, require, sees_account
from ledger.application import open_ledger
from ledger.clock import MovableClock, SystemClock
from ledger.readmodels.sqlstore import ReadStore, to_text
from ledger.services import LedgerService

# Each role's allowance, for an account the principal sees (its own holding or scope).
MATRIX_TABLE = """
action              admin  collector  auditor  agency  lawfirm
account.read        yes    yes        yes      yes     yes
account.write       yes    yes        no       no      no
contact.write       yes    yes        no       yes     yes
message.write       yes    yes        no       no      no
promise.write       yes    yes        no       yes     yes
payment.write       yes    yes        no       yes     yes
payment.reverse     yes    yes        no       no      no
legal_status.write  yes    yes        no       yes     yes
history.read        yes    yes        yes      no      no
feed.read           yes    yes        yes      yes     yes
report.read         yes    no         yes      no      no
plugins.read        yes    no         yes      no      no
admin               yes    no         no       no      no
"""


def parse_matrix(text: str) -> dict[tuple[str, str], bool]:
    """``{(action, role): allowed}`` from rows of an action then one yes/no per role."""
    cells: dict[tuple[str, str], bool] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) == len(ROLES) + 1 and words[0] in ACTIONS:
            for role, word in zip(ROLES, words[1:], strict=True):
                assert word in ("yes", "no"), line
                cells[(words[0], role)] = word == "yes"
    return cells


MATRIX = parse_matrix(MATRIX_TABLE)

ACME = "acme-bank"


def account(
    holder_kind: str = "creditor", holder_name: str = ACME, creditor: str = ACME
) -> dict[str, Any]:
    """An account summary as the API returns it (only the fields access looks at)."""
    return {
        "account_id": "5b0b1a3c-0000-4000-8000-000000000001",
        "creditor": creditor,
        "holder": {"kind": holder_kind, "name": holder_name},
    }


PRINCIPALS = {
    "admin": Principal("t-admin", "admin"),
    "collector": Principal("t-collector", "collector", creditor=ACME),
    "auditor": Principal("t-auditor", "auditor"),
    "agency": Principal("t-agency", "agency", agency="north-agency"),
    "lawfirm": Principal("t-lawfirm", "lawfirm", firm="lex-llp"),
}

#: The account each principal sees: with the creditor, or held by that agency or firm.
OWN_ACCOUNT = {
    "admin": account(),
    "collector": account(),
    "auditor": account(),
    "agency": account("agency", "north-agency"),
    "lawfirm": account("law_firm", "lex-llp"),
}


# --------------------------------------------------------------- the matrix


def test_the_matrix_covers_every_role_and_action() -> None:
    """The table below has exactly one cell per role and action."""
    assert set(MATRIX) == {(a, r) for a in ACTIONS for r in ROLES}


@pytest.mark.parametrize(("action", "role"), sorted(MATRIX))
def test_role_action_matrix(action: str, role: str) -> None:
    """Each role may do exactly its table's actions, on an account it sees and in general."""
    principal = PRINCIPALS[role]
    assert can(principal, action, OWN_ACCOUNT[role]) is MATRIX[(action, role)]
    assert can(principal, action) is MATRIX[(action, role)]


def test_the_module_docstring_documents_the_same_matrix() -> None:
    """The table in ledger/access.py's docstring says what the code does."""
    assert access.__doc__ is not None
    assert parse_matrix(access.__doc__) == MATRIX


def test_admin_and_auditor_see_every_account() -> None:
    """Admins and auditors see accounts of any creditor, whoever holds them."""
    others = [
        account(creditor="globex"),
        account("agency", "south-agency"),
        account("law_firm", "other-llp"),
        account("buyer", "debt-buyer-inc"),
    ]
    for role in ("admin", "auditor"):
        assert all(sees_account(PRINCIPALS[role], a) for a in others)
    assert can(PRINCIPALS["admin"], "account.write", others[0])
    assert not can(PRINCIPALS["auditor"], "account.write", others[0])
    assert can(PRINCIPALS["auditor"], "history.read", others[3])


# ------------------------------------------------------------------ scopes


def test_an_agency_probing_another_agencys_account_sees_nothing() -> None:
    """An account placed with another agency is invisible: every action False, and the
    refusal is worded exactly as for a missing account."""
    north = PRINCIPALS["agency"]
    theirs = account("agency", "south-agency")
    assert not sees_account(north, theirs)
    assert not any(can(north, action, theirs) for action in ACTIONS)
    with pytest.raises(errors.AccountNotFound) as caught:
        require(north, "account.read", theirs)
    assert caught.value.as_dict() == {
        "code": "account_not_found",
        "message": f"no account {theirs['account_id']}",
        "account_id": theirs["account_id"],
    }


def test_an_agency_loses_the_account_once_recalled() -> None:
    """Back with the creditor (or referred to a law firm), the account disappears for the agency."""
    north = PRINCIPALS["agency"]
    for elsewhere in (account(), account("law_firm", "north-agency"), account("buyer", "x")):
        assert not sees_account(north, elsewhere)
        assert not can(north, "payment.write", elsewhere)


def test_a_law_firm_sees_only_the_accounts_referred_to_it() -> None:
    """A law firm works its referrals, and sees neither other firms' nor agencies' accounts."""
    lex = PRINCIPALS["lawfirm"]
    assert can(lex, "legal_status.write", account("law_firm", "lex-llp"))
    assert can(lex, "payment.write", account("law_firm", "lex-llp"))
    for other in (account("law_firm", "other-llp"), account("agency", "lex-llp"), account()):
        assert not sees_account(lex, other)
        assert not any(can(lex, action, other) for action in ACTIONS)


def test_a_collector_works_only_its_creditor() -> None:
    """A collector scoped to one creditor cannot see another's accounts; unscoped, it sees all."""
    scoped = PRINCIPALS["collector"]
    globex = account(creditor="globex", holder_name="globex")
    assert not sees_account(scoped, globex)
    assert not any(can(scoped, action, globex) for action in ACTIONS)
    assert can(scoped, "account.write", account("agency", "north-agency"))  # still acme's
    everyone = Principal("t-all", "collector")
    assert sees_account(everyone, globex) and can(everyone, "account.write", globex)


def test_read_model_rows_with_flat_holder_columns_work_too() -> None:
    """``holder_kind``/``holder_name`` (the read model's columns) are read like ``holder``."""
    row = {"creditor": ACME, "holder_kind": "agency", "holder_name": "north-agency"}
    assert sees_account(PRINCIPALS["agency"], row)
    assert not sees_account(PRINCIPALS["lawfirm"], row)


def test_a_visible_account_refused_for_the_role_is_forbidden() -> None:
    """An auditor may read an account but recording a payment on it is forbidden (403)."""
    with pytest.raises(errors.Forbidden) as caught:
        require(PRINCIPALS["auditor"], "payment.write", account())
    assert caught.value.code == "forbidden"
    assert caught.value.details == {"role": "auditor", "action": "payment.write"}
    require(PRINCIPALS["collector"], "payment.write", account())  # allowed: no error


def test_unknown_roles_and_actions_are_programming_errors() -> None:
    """A role or action outside ROLES/ACTIONS raises ValueError instead of answering False."""
    with pytest.raises(ValueError, match="unknown role"):
        Principal("t", "root")
    with pytest.raises(ValueError, match="unknown action"):
        can(PRINCIPALS["admin"], "account.delete")
    with pytest.raises(ValueError, match="unknown action"):
        can(PRINCIPALS["agency"], "everything", OWN_ACCOUNT["agency"])


# ------------------------------------------------------------------ tokens


@pytest.fixture
def tokens(service: LedgerService) -> Iterator[TokenStore]:
    store = service.tokens()
    yield store
    store.close()


def raw_rows(service: LedgerService) -> list[dict[str, Any]]:
    """The api_tokens table as stored, read over a connection of its own."""
    assert service.ledger.store_config is not None
    reader = ReadStore(service.ledger.store_config)
    try:
        return reader.query("SELECT * FROM api_tokens")
    finally:
        reader.close()


def test_a_created_token_authenticates_as_its_principal(
    service: LedgerService, tokens: TokenStore, clock: MovableClock
) -> None:
    """A new agency token looks like arr_<id>_<secret> and authenticates as that agency."""
    moment = clock.current
    principal, token = tokens.create("agency", agency="north-agency", label="north's CRM")
    assert re.fullmatch(rf"arr_{principal.token_id}_[A-Za-z0-9_-]{{43}}", token)
    assert principal == Principal(principal.token_id, "agency", agency="north-agency")
    assert tokens.authenticate(token) == principal
    assert tokens.require(token) == principal
    assert service.tokens() is tokens  # the service keeps one store
    (row,) = tokens.list()
    assert row == {
        "token_id": principal.token_id,
        "role": "agency",
        "agency": "north-agency",
        "firm": None,
        "creditor": None,
        "label": "north's CRM",
        "created_at": to_text(moment),
        "revoked_at": None,
    }


def test_secrets_are_never_stored(service: LedgerService, tokens: TokenStore) -> None:
    """The raw row holds the secret's SHA-256 digest and nothing else derived from the token."""
    _, token = tokens.create("collector", creditor=ACME)
    secret = token.split("_", 2)[2]
    (row,) = raw_rows(service)
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    stored = " ".join(str(v) for v in row.values())
    assert secret not in stored and token not in stored
    assert "secret_hash" not in tokens.list()[0]


def test_malformed_and_unknown_tokens_authenticate_nobody(tokens: TokenStore) -> None:
    """Garbage, another prefix, a wrong secret or an unknown id all give None."""
    principal, token = tokens.create("admin")
    secret = token.split("_", 2)[2]
    wrong_secret = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for bad in (
        "",
        "Bearer " + token,
        "arr_",
        "arr__",
        f"xyz_{principal.token_id}_{secret}",
        f"arr_{principal.token_id}",
        f"arr_{principal.token_id}_short",
        f"arr_{principal.token_id.upper()}_{secret}",
        f"arr_{principal.token_id}_{wrong_secret}",
        f"arr_{'0' * 16}_{secret}",
        f"arr_{principal.token_id}_{secret}'; DROP TABLE api_tokens; --",
    ):
        assert tokens.authenticate(bad) is None, bad
    with pytest.raises(errors.TokenInvalid) as caught:
        tokens.require(None)
    assert caught.value.code == "unauthorized"
    assert tokens.authenticate(f"  {token}\n") == principal  # surrounding space is not a secret


def test_a_revoked_token_stops_working(tokens: TokenStore, clock: MovableClock) -> None:
    """After revoke the token authenticates nobody; revoking twice or an unknown id is False."""
    principal, token = tokens.create("auditor", label="annual audit")
    other, other_token = tokens.create("admin")
    clock.advance(timedelta(days=1))
    moment = clock.current
    assert tokens.revoke(principal.token_id) is True
    assert tokens.authenticate(token) is None
    with pytest.raises(errors.TokenInvalid):
        tokens.require(token)
    assert tokens.revoke(principal.token_id) is False
    assert tokens.revoke("0" * 16) is False
    assert tokens.authenticate(other_token) == other
    revoked = {r["token_id"]: r["revoked_at"] for r in tokens.list()}
    assert revoked == {principal.token_id: to_text(moment), other.token_id: None}


@pytest.mark.parametrize(
    ("role", "names", "code", "field"),
    [
        ("agency", {}, "invalid_input", "agency"),
        ("lawfirm", {"agency": "north-agency"}, "invalid_input", "firm"),
        ("agency", {"agency": "north-agency", "firm": "lex-llp"}, "invalid_input", "firm"),
        ("collector", {"agency": "north-agency"}, "invalid_input", "agency"),
        ("admin", {"creditor": ACME}, "invalid_input", "creditor"),
        ("auditor", {"firm": "lex-llp"}, "invalid_input", "firm"),
        ("lawfirm", {"firm": "lex-llp", "creditor": ACME}, "invalid_input", "creditor"),
        ("collector", {"creditor": "  "}, "invalid_input", "creditor"),
        ("root", {}, "invalid_choice", "role"),
    ],
)
def test_a_token_is_created_only_with_the_names_its_role_needs(
    service: LedgerService, role: str, names: dict[str, str], code: str, field: str
) -> None:
    """Agency needs --agency, lawfirm --firm; no role takes another role's names."""
    with pytest.raises(errors.LedgerError) as caught:
        service.tokens().create(role, **names)
    assert (caught.value.code, caught.value.details["field"]) == (code, field)
    assert service.tokens().list() == []


def test_tokens_survive_reopening_the_store(store_url: str) -> None:
    """A token created through one ledger authenticates through another (another process)."""
    first = open_ledger(store_url)
    writer = TokenStore(first, SystemClock())
    try:
        principal, token = writer.create("lawfirm", firm="lex-llp")
    finally:
        writer.close()
        first.close()
    second = open_ledger(store_url)
    reader = TokenStore(second, SystemClock())
    try:
        assert reader.authenticate(token) == principal
    finally:
        reader.close()
        second.close()


# --------------------------------------------------------------------- CLI


def run(*args: str) -> Any:
    return CliRunner().invoke(cli.main, ["tokens", *args], catch_exceptions=False)


def test_cli_creates_a_token_shown_once(sqlite_url: str) -> None:
    """`tokens create` prints the token alone on stdout and warns it cannot be shown again."""
    result = run("create", "--role", "agency", "--agency", "north-agency", "--store", sqlite_url)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("arr_") and "\n" not in token
    assert "shown only this once" in result.stderr
    ledger = open_ledger(sqlite_url)
    store = TokenStore(ledger, SystemClock())
    try:
        principal = store.authenticate(token)
    finally:
        store.close()
        ledger.close()
    assert principal is not None
    assert (principal.role, principal.agency) == ("agency", "north-agency")


def test_cli_json_list_and_revoke(sqlite_url: str) -> None:
    """--json gives the token and its details; list never shows secrets; revoke works once."""
    result = run(
        "create", "--role", "collector", "--creditor", ACME, "--label", "ops", "--json",
        "--store", sqlite_url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert (created["role"], created["creditor"], created["label"]) == ("collector", ACME, "ops")
    token_id = created["token_id"]
    assert created["token"].startswith(f"arr_{token_id}_")

    listed = run("list", "--json", "--store", sqlite_url)
    (row,) = json.loads(listed.stdout)
    assert row["token_id"] == token_id and row["revoked_at"] is None
    assert created["token"].split("_", 2)[2] not in listed.stdout
    assert "secret_hash" not in row
    assert f"creditor={ACME}" in run("list", "--store", sqlite_url).stdout

    assert run("revoke", token_id, "--store", sqlite_url).stdout == f"token {token_id} revoked\n"
    again = run("revoke", token_id, "--store", sqlite_url)
    assert again.exit_code == 1 and "already revoked" in again.stderr
    assert "revoked 20" in run("list", "--store", sqlite_url).stdout


def test_cli_refuses_a_role_without_its_name(sqlite_url: str) -> None:
    """`tokens create --role lawfirm` without --firm is a one-line invalid_input error."""
    result = run("create", "--role", "lawfirm", "--store", sqlite_url)
    assert result.exit_code == 2
    assert result.stderr.startswith("error [invalid_input]: lawfirm tokens need --firm")
    assert result.stdout == ""


def test_token_times_come_from_the_service_clock(store_url: str) -> None:
    """created_at is the injected clock's time, not the machine's."""
    ledger = open_ledger(store_url)
    store = TokenStore(ledger, MovableClock(START))
    try:
        store.create("admin")
        (row,) = store.list()
    finally:
        store.close()
        ledger.close()
    assert row["created_at"] == to_text(START)
