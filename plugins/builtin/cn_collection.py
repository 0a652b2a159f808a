"""``cn_collection`` — the China collection-conduct contact rule pack.

After the China Banking Association's collection guideline (2026): no collection
contact between 22:00 and 08:00 without the debtor's consent, at most 6 unanswered
call attempts a day to the same contact, and third parties who are not guarantors
asked only for the debtor's contact details, never told of the debt.

Which contacts it judges
------------------------
This is a *rule pack* (``RULE_PACK``): the contact gate calls it only for accounts
whose debtor's jurisdiction maps to ``cn_collection`` (by default ``CN*``), so the
pack itself does not look at the jurisdiction.  The proposed contact is taken to
be *outbound*: the gate judges what Arrears is about to send, place or do.

The views it reads (the contract with the contact gate, ``docs/contact-views.md``)
---------------------------------------------------------------------------------
``account`` (a read-only mapping; a missing key means "no" / "none"):

- ``contacts`` — a list of ``{"channel", "direction", "outcome", "occurred_at", "to", ...}``
  (``occurred_at`` a timezone-aware ``datetime``).  Only the ones on the local day of
  ``at`` matter; contacts at or after ``at`` are ignored, so a contact already
  recorded is not counted against itself.  A missing ``to`` is ``None``.
- ``contact_preferences`` — read for its ``window_start`` / ``window_end``
  (``datetime.time``, local): the hours the debtor agreed to be contacted in, which
  may cross midnight (``22:30``-``07:00``).  A window needs both ends.

``debtor`` (a read-only mapping):

- ``time_zone`` (IANA name or None) and ``time_zones`` (optional list of IANA names,
  when the information points to several places; ``time_zone`` is added to them).
  No zone, or a name that is not an IANA zone, means "unknown": the pack then uses
  ``default_time_zone`` (``Asia/Shanghai``, all of China keeps Beijing time) in its
  place, next to any valid zones also given.  With several zones a time rule must
  pass in every one of them.  Local times come from ``zoneinfo``, so DST is right
  wherever a debtor may be.

``party`` (``"debtor"``, ``"guarantor"`` or ``"third_party"``) and ``to`` (the
contact-point label, e.g. ``"phone:0"``, or ``None`` when unknown) come with the hook.

Windows and times
-----------------
Every window is half-open, ``[start, end)``, and crosses midnight when ``start`` is
later than ``end``; a window whose ``start`` equals its ``end`` is empty.  So the
quiet hours ``[22:00, 08:00)`` block 22:00:00 and 07:59:59 and allow 21:59:59 and
08:00:00, and a debtor's window ``[22:30, 07:00)`` covers 22:30:00 to 06:59:59.

The rules (rule ids ``cn_collection.<name>``, all at version ``RULE_VERSION``)
------------------------------------------------------------------------------
- ``quiet_hours`` — every channel except ``letter`` (a letter communicates when the
  post delivers it) and the pseudo-channel ``legal`` (not a communication).  The
  local time must be outside ``[quiet_start, quiet_end)`` (default 22:00-08:00) in
  every candidate zone, unless the debtor agreed to it: the contact is with the
  debtor (``party == "debtor"``) and the local time is inside the debtor's agreed
  window in that zone.  The debtor's window is the *debtor's* consent, so it never
  covers a call to a guarantor or a third party.  Every purpose is judged.
- ``unanswered_calls`` — ``phone`` (and its alias ``voice``) only.  An unanswered
  attempt is an outbound telephone contact whose outcome is **not** one where
  someone answered: everything but ``right_party_contact``, ``third_party_contact``
  and ``wrong_number`` counts — ``no_answer``, ``busy``, ``left_message``,
  ``refused`` (declined or hung up), ``failed`` (Arrears cannot tell whether the
  phone rang), and any other or missing outcome: the protective choice.  Only
  attempts on the local day of ``at`` (a calendar day in the debtor's zone, not the
  UTC day) to the same number count: a contact's ``to`` equal to the proposed
  ``to``, or either of them ``None`` (an unknown number may be the same one: the
  protective choice).  With ``max_unanswered_calls_per_day`` (6) already, the next
  call (the 7th) is blocked; with 5, the 6th is allowed.  With several candidate
  zones the count is taken in each and the highest decides.  Any party, any purpose.
- ``third_party`` — a contact with anyone but the debtor or a guarantor
  (``party == "third_party"``, or an unknown party: the protective choice), on
  every channel except ``legal``.  Only purpose ``location_inquiry`` (asking for
  the debtor's contact details) is allowed; everything else is blocked, and the
  reason says the debt must never be disclosed to them.  Templates for
  ``location_inquiry`` must therefore not mention the debt, the creditor's
  business or any amount: the pack cannot see a message's text, so this is the
  template author's duty (and a template review's).  Deliberately narrower than
  the guideline, which also allows asking a third party to pass on a message.
  Not implemented here, because the views do not carry what they need: "only when
  the debtor cannot be reached" and "not again once they object".  For a debtor or
  a guarantor the rule does not apply (no verdict).

Not in this pack: call recording (an adapter's duty), the earlier internet-finance
convention (3 connected calls a day, rounds 7 days apart) and record keeping.

Verdict policy (as ``us_reg_f``): every rule that applies to the contact returns
exactly one verdict, ``block`` or ``allow``; a rule that does not apply returns
none.  No ``warn``.

Parameters
----------
The numbers are ``CnCollectionParameters`` (frozen, validated); ``DEFAULTS`` holds
the guideline's.  ``judge`` is pure and takes them as an argument; the hook uses the
module's active parameters, which ``configure(**overrides)`` replaces (overrides
apply to ``DEFAULTS``, so ``configure()`` restores them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from plugins.builtin.localtime import (
    agreed_window,
    candidate_zones,
    check_local_time,
    within,
)
from plugins.builtin.localtime import (
    zone as iana_zone,
)
from plugins.builtin.packkit import Settable, verdicts_for
from plugins.hookspecs import hookimpl
from plugins.types import Verdict

RULE_PACK = "cn_collection"
RULE_VERSION = "1"

GUIDELINE = "China Banking Association collection guideline (2026)"
CITATIONS: dict[str, str] = {
    "quiet_hours": f"{GUIDELINE}: no collection contact 22:00-08:00 without consent",
    "unanswered_calls": f"{GUIDELINE}: at most 6 unanswered call attempts a day to one contact",
    "third_party": f"{GUIDELINE}: third parties; PIPL art. 28",
}

TELEPHONE = frozenset({"phone", "voice"})
NOT_TIMED = frozenset({"letter", "legal"})
NOT_COMMUNICATION = frozenset({"legal"})
ANSWERED = frozenset({"right_party_contact", "third_party_contact", "wrong_number"})
OWN_PARTIES = frozenset({"debtor", "guarantor"})
THIRD_PARTY_PURPOSES = frozenset({"location_inquiry"})


@dataclass(frozen=True)
class CnCollectionParameters:
    """The pack's numbers; the defaults are the guideline's."""

    quiet_start: time = time(22)
    quiet_end: time = time(8)
    max_unanswered_calls_per_day: int = 6
    default_time_zone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        for name in ("quiet_start", "quiet_end"):
            check_local_time(name, getattr(self, name), "22:00")
        if self.quiet_start == self.quiet_end:
            raise ValueError("quiet_start and quiet_end are equal: give a non-empty quiet window")
        calls = self.max_unanswered_calls_per_day
        if isinstance(calls, bool) or not isinstance(calls, int) or calls < 0:
            raise ValueError(
                f"max_unanswered_calls_per_day must be a whole number >= 0, not {calls!r}"
            )
        iana_zone(self.default_time_zone)


DEFAULTS = CnCollectionParameters()
PARAMETERS = Settable(DEFAULTS)
configure = PARAMETERS.configure


def active_parameters() -> CnCollectionParameters:
    """The parameters the hook uses now."""
    return PARAMETERS.active


_verdict = verdicts_for(RULE_PACK, RULE_VERSION, CITATIONS)


# ------------------------------------------------------------------------ rules


def quiet_hours(
    zones: Sequence[ZoneInfo],
    known: bool,
    at: datetime,
    window: tuple[time, time] | None,
    params: CnCollectionParameters,
) -> Verdict:
    span = f"{params.quiet_start:%H:%M}-{params.quiet_end:%H:%M}"
    bad, agreed = [], []
    for zone in zones:
        local = at.astimezone(zone)
        clock = local.time()
        if not within(clock, params.quiet_start, params.quiet_end):
            continue
        if window is not None and within(clock, *window):
            agreed.append(f"{local:%H:%M} in {zone.key}")
        else:
            bad.append(f"{local:%H:%M:%S} in {zone.key}")
    where = "the debtor's time zone" if known else f"{params.default_time_zone} (time zone unknown)"
    if len(zones) > 1:
        where = "every time zone the debtor may be in"
    if bad:
        return _verdict(
            "quiet_hours",
            True,
            f"within the quiet hours {span} local time without the debtor's agreement: "
            f"it would be {', '.join(bad)}",
        )
    if agreed:
        return _verdict(
            "quiet_hours",
            False,
            f"within the quiet hours ({', '.join(agreed)}) but inside the window the debtor "
            "agreed to be contacted in",
        )
    return _verdict("quiet_hours", False, f"outside the quiet hours {span} in {where}")


def _same_number(contact_to: object, to: str | None) -> bool:
    return contact_to is None or to is None or contact_to == to


def _local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def unanswered_calls(
    zones: Sequence[ZoneInfo],
    account: Mapping[str, Any],
    at: datetime,
    to: str | None,
    params: CnCollectionParameters,
) -> Verdict:
    attempts = [
        c
        for c in account.get("contacts") or ()
        if c.get("channel") in TELEPHONE
        and c.get("direction") == "outbound"
        and c.get("outcome") not in ANSWERED
        and c["occurred_at"] < at
        and _same_number(c.get("to"), to)
    ]
    worst, worst_day = 0, ""
    for zone in zones:
        today = _local_day(at, zone)
        count = sum(1 for c in attempts if _local_day(c["occurred_at"], zone) == today)
        if count >= worst:
            worst, worst_day = count, f"{today.isoformat()} ({zone.key})"
    number = "this number" if to is None else to
    limit = params.max_unanswered_calls_per_day
    if worst >= limit:
        return _verdict(
            "unanswered_calls",
            True,
            f"{worst} unanswered call attempts to {number} already on {worst_day}; "
            f"at most {limit} a day",
        )
    return _verdict(
        "unanswered_calls",
        False,
        f"{worst} unanswered call attempts to {number} on {worst_day}; at most {limit} a day",
    )


def third_party(party: str, purpose: str) -> Verdict:
    party = party.replace("_", " ") or "third party"
    if purpose in THIRD_PARTY_PURPOSES:
        return _verdict(
            "third_party",
            False,
            f"a {party} may be asked only for the debtor's contact details: "
            "the debt must never be disclosed to them",
        )
    return _verdict(
        "third_party",
        True,
        f"a {party} may only be asked for the debtor's contact details ({purpose!r} is not "
        "allowed): the debt must never be disclosed to them",
    )


def judge(
    account: Mapping[str, Any],
    debtor: Mapping[str, Any],
    channel: str,
    purpose: str,
    at: datetime,
    party: str,
    to: str | None,
    params: CnCollectionParameters = DEFAULTS,
) -> list[Verdict]:
    """Every applicable rule's verdict on one proposed contact (see the module docstring)."""
    if at.tzinfo is None:
        raise ValueError("at must be a timezone-aware datetime (the gate passes UTC)")
    zones, known = candidate_zones(debtor, params.default_time_zone)
    verdicts: list[Verdict] = []
    if channel not in NOT_TIMED:
        window = agreed_window(account) if party == "debtor" else None
        verdicts.append(quiet_hours(zones, known, at, window, params))
    if channel in TELEPHONE:
        verdicts.append(unanswered_calls(zones, account, at, to, params))
    if party not in OWN_PARTIES and channel not in NOT_COMMUNICATION:
        verdicts.append(third_party(party, purpose))
    return verdicts


# ------------------------------------------------------------------------ hooks


@hookimpl
def arrears_contact_rules(
    account: Mapping[str, Any],
    debtor: Mapping[str, Any],
    channel: str,
    purpose: str,
    at: datetime,
    party: str,
    to: str | None,
) -> Sequence[Verdict]:
    """China collection-guideline verdicts on one proposed contact."""
    return judge(account, debtor, channel, purpose, at, party, to, PARAMETERS.active)
