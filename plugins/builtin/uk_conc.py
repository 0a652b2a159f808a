"""``uk_conc`` — the UK contact rule pack: FCA CONC 7 and the Debt Respite Scheme.

Implements ``arrears_contact_rules`` for CONC 7.9.4R (no contact at unreasonable
times; the customer's reasonable requests about when and how to be contacted are
honoured) and the Debt Respite Scheme (Breathing Space Moratorium and Mental Health
Crisis Moratorium) (England and Wales) Regulations 2020, SI 2020/1311 (no creditor
contact or enforcement during a moratorium).

The other half of a breathing space — no interest, fees or charges accrue on the
debt while it lasts (SI 2020/1311 reg. 7) — is not a contact rule: the ledger's
domain enforces it when it charges interest and fees.

Which contacts it judges
------------------------
This is a *rule pack* (``RULE_PACK``): the contact gate calls it only for accounts
whose debtor's jurisdiction maps to ``uk_conc`` (by default ``GB*``), so the pack
itself does not look at the jurisdiction.  The proposed contact is taken to be
*outbound*: the gate judges what Arrears is about to send, place or do.

The views it reads (the contract with the contact gate, ``docs/contact-views.md``)
---------------------------------------------------------------------------------
``account`` (a read-only mapping; a missing key means "no" / "none"):

- ``in_breathing_space`` (bool) — a moratorium is active on the UTC date of ``at``.
  When the key is absent it is derived from ``breathing_space`` the same way
  (``started_on <= at.date() and (ends_on is None or at.date() <= ends_on)``).
- ``breathing_space`` — None or ``{"kind": "standard" | "mental_health",
  "started_on": date, "ends_on": date | None, "reference": str}``; ``ends_on`` is
  None for a mental-health crisis moratorium whose treatment has not ended.  Read
  for the reason text (and the derivation above).
- ``contact_preferences`` — ``{"channels": list | None, "refused_channels": list,
  "window_start": time | None, "window_end": time | None}``: the channels the
  debtor agreed to (None: any), the channels they refused, and the local hours
  they agreed to be contacted in (the window may cross midnight).

``debtor`` (a read-only mapping):

- ``time_zone`` (IANA name or None) and ``time_zones`` (optional list of IANA names;
  ``time_zone`` is added to them).  No zone, or a name that is not an IANA zone,
  means "unknown": ``default_time_zone`` (``Europe/London``) is used in its place,
  next to any valid zones also given.  With several zones a time rule must pass in
  every one.  Local times come from ``zoneinfo``, so BST/GMT changes are right.

``party`` (``"debtor"``, ``"guarantor"`` or ``"third_party"``) comes with the hook:
the debtor's preferences and agreed window are the *debtor's*, so they apply only
to contacts with the debtor.

Windows and times
-----------------
Every window is half-open, ``[start, end)``, and crosses midnight when ``start`` is
later than ``end``; a window whose ``start`` equals its ``end`` is empty.  So the
reasonable hours ``[08:00, 21:00)`` allow 08:00:00 and 20:59:59 and block 07:59:59
and 21:00:00.  ``"phone"`` and ``"voice"`` are one medium (telephone) in the
debtor's channel preferences: refusing either refuses both.

The rules (rule ids ``uk_conc.<name>``, all at version ``RULE_VERSION``)
------------------------------------------------------------------------
- ``breathing_space`` — every channel, ``legal`` included (no enforcement action
  during a moratorium), every party (the moratorium stops contact to recover the
  debt from anyone).  While a breathing space is active everything is blocked
  except purpose ``breathing_space_notice``; the reason names the kind — a
  *standard* breathing space (60 days, reg. 26) or a *mental-health crisis*
  breathing space (the crisis treatment plus 30 days, Part 3) — and its end date,
  or "until 30 days after the crisis treatment ends" while that end is not known.
  First and last day are inside; the day after ``ends_on`` is not.  SI 2020/1311
  regs. 7 and 11.
- ``unreasonable_hours`` — every channel except ``letter`` (a letter communicates
  when the post delivers it) and ``legal`` (not a communication).  The local time
  must be inside ``[reasonable_start, reasonable_end)`` (default 08:00-21:00) in
  every candidate zone, unless the contact is with the debtor and the local time
  is inside the debtor's agreed window there (e.g. a shift worker's ``22:30-07:00``).
  Every purpose.  CONC 7.9.4R.
- ``contact_preferences`` — contacts with the debtor on every channel except
  ``legal``; every purpose.  Blocked when the channel is in ``refused_channels``;
  when ``channels`` is set (a list, even empty) and the channel is not in it; when
  the agreed window has only one end (the preference cannot be honoured until it
  is corrected); and — for every channel but ``letter``, which is not timed — when
  the window is set and the local time is outside it in any candidate zone.
  CONC 7.9.4R.

Not in this pack: forbearance and due consideration (CONC 7.3.4R), pressure to pay
(7.3.10R) and disclosure to third parties (7.9.6R-7.9.10R), which are about what is
said rather than whether a contact may be made; breathing-space eligibility (at
most one standard breathing space in 12 months), which the debt adviser checks.

Verdict policy (as ``us_reg_f``): every rule that applies to the contact returns
exactly one verdict, ``block`` or ``allow``; a rule that does not apply returns
none.  No ``warn``.

Parameters
----------
The numbers are ``UkConcParameters`` (frozen, validated); ``DEFAULTS`` holds ours
(CONC names no hours: 08:00-21:00 is the industry reading of "reasonable").
``judge`` is pure and takes them as an argument; the hook uses the module's active
parameters, which ``configure(**overrides)`` replaces (overrides apply to
``DEFAULTS``, so ``configure()`` restores them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from plugins.builtin.localtime import (
    agreed_window,
    candidate_zones,
    check_local_time,
    window_ends,
    within,
)
from plugins.builtin.localtime import (
    zone as iana_zone,
)
from plugins.builtin.packkit import Settable, verdicts_for
from plugins.hookspecs import hookimpl
from plugins.types import Verdict

RULE_PACK = "uk_conc"
RULE_VERSION = "1"

MORATORIUM_REGULATIONS = "SI 2020/1311"
CITATIONS: dict[str, str] = {
    "breathing_space": f"{MORATORIUM_REGULATIONS} regs. 7 and 11 (Debt Respite Scheme)",
    "unreasonable_hours": "FCA CONC 7.9.4R",
    "contact_preferences": "FCA CONC 7.9.4R",
}

TELEPHONE = frozenset({"phone", "voice"})
NOT_TIMED = frozenset({"letter", "legal"})
NOT_COMMUNICATION = frozenset({"legal"})
BREATHING_SPACE_ALLOWED_PURPOSES = frozenset({"breathing_space_notice"})
KINDS: dict[str, str] = {
    "standard": "a standard breathing space (60 days)",
    "mental_health": "a mental-health crisis breathing space (crisis treatment + 30 days)",
}


@dataclass(frozen=True)
class UkConcParameters:
    """The pack's numbers."""

    reasonable_start: time = time(8)
    reasonable_end: time = time(21)
    default_time_zone: str = "Europe/London"

    def __post_init__(self) -> None:
        for name in ("reasonable_start", "reasonable_end"):
            check_local_time(name, getattr(self, name), "08:00")
        if self.reasonable_start == self.reasonable_end:
            raise ValueError(
                "reasonable_start and reasonable_end are equal: no hour would be allowed"
            )
        iana_zone(self.default_time_zone)


DEFAULTS = UkConcParameters()
PARAMETERS = Settable(DEFAULTS)
configure = PARAMETERS.configure


def active_parameters() -> UkConcParameters:
    """The parameters the hook uses now."""
    return PARAMETERS.active


_verdict = verdicts_for(RULE_PACK, RULE_VERSION, CITATIONS)


def _preferences(account: Mapping[str, Any]) -> Mapping[str, Any]:
    prefs: Mapping[str, Any] = account.get("contact_preferences") or {}
    return prefs


def _medium(channel: str) -> frozenset[str]:
    return TELEPHONE if channel in TELEPHONE else frozenset({channel})


# ------------------------------------------------------------------------ rules


def _in_breathing_space(account: Mapping[str, Any], at: datetime) -> bool:
    flag = account.get("in_breathing_space")
    if flag is not None:
        return bool(flag)
    space: Mapping[str, Any] | None = account.get("breathing_space")
    if not space or not isinstance(space.get("started_on"), date):
        return False
    today = at.astimezone(UTC).date()
    ends_on = space.get("ends_on")
    return bool(space["started_on"] <= today and (ends_on is None or today <= ends_on))


def _describe(space: Mapping[str, Any] | None) -> str:
    if not space:
        return "a breathing space (kind and dates not given)"
    kind = str(space.get("kind"))
    text = KINDS.get(kind, f"a breathing space of unknown kind {kind!r}")
    if space.get("started_on"):
        text += f" that started on {space['started_on']}"
    ends_on = space.get("ends_on")
    if ends_on is not None:
        return f"{text}, until {ends_on}"
    if kind == "mental_health":
        return f"{text}, until 30 days after the crisis treatment ends"
    return f"{text}, end date not recorded"


def breathing_space(account: Mapping[str, Any], purpose: str, at: datetime) -> Verdict:
    space: Mapping[str, Any] | None = account.get("breathing_space")
    if not _in_breathing_space(account, at):
        return _verdict("breathing_space", False, "no breathing space is active")
    what = _describe(space)
    if purpose in BREATHING_SPACE_ALLOWED_PURPOSES:
        return _verdict(
            "breathing_space", False, f"a breathing-space notice is allowed during {what}"
        )
    return _verdict(
        "breathing_space",
        True,
        f"{what}: no contact to recover the debt and no enforcement action ({purpose!r})",
    )


def unreasonable_hours(
    zones: Sequence[ZoneInfo],
    known: bool,
    at: datetime,
    window: tuple[time, time] | None,
    params: UkConcParameters,
) -> Verdict:
    span = f"{params.reasonable_start:%H:%M}-{params.reasonable_end:%H:%M}"
    bad, agreed = [], []
    for zone in zones:
        local = at.astimezone(zone)
        clock = local.time()
        if within(clock, params.reasonable_start, params.reasonable_end):
            continue
        if window is not None and within(clock, *window):
            agreed.append(f"{local:%H:%M:%S} in {zone.key}")
        else:
            bad.append(f"{local:%H:%M:%S} in {zone.key}")
    where = "the debtor's time zone" if known else f"{params.default_time_zone} (time zone unknown)"
    if len(zones) > 1:
        where = "every time zone the debtor may be in"
    if bad:
        return _verdict(
            "unreasonable_hours",
            True,
            f"outside the reasonable hours {span} local time: it would be {', '.join(bad)}",
        )
    if agreed:
        return _verdict(
            "unreasonable_hours",
            False,
            f"outside {span} ({', '.join(agreed)}) but inside the window the debtor agreed to",
        )
    return _verdict("unreasonable_hours", False, f"within {span} in {where}")


def contact_preferences(
    zones: Sequence[ZoneInfo], account: Mapping[str, Any], channel: str, at: datetime
) -> Verdict:
    prefs = _preferences(account)
    medium = _medium(channel)
    refused = {str(c) for c in prefs.get("refused_channels") or ()}
    if medium & refused:
        return _verdict("contact_preferences", True, f"the debtor refused contact by {channel}")
    agreed_channels = prefs.get("channels")
    if agreed_channels is not None and not medium & {str(c) for c in agreed_channels}:
        listed = ", ".join(str(c) for c in agreed_channels) or "none"
        return _verdict(
            "contact_preferences",
            True,
            f"the debtor asked to be contacted only by {listed}, not by {channel}",
        )
    start, end = window_ends(account)
    if (start is None) != (end is None):
        return _verdict(
            "contact_preferences",
            True,
            f"the debtor's contact window is incomplete (from {start}, until {end}): "
            "correct the debtor's contact preferences before contacting them",
        )
    if start is not None and end is not None and channel not in NOT_TIMED:
        outside = [
            f"{at.astimezone(zone):%H:%M:%S} in {zone.key}"
            for zone in zones
            if not within(at.astimezone(zone).time(), start, end)
        ]
        if outside:
            return _verdict(
                "contact_preferences",
                True,
                f"outside the hours the debtor asked to be contacted in ({start:%H:%M}-"
                f"{end:%H:%M}): it would be {', '.join(outside)}",
            )
    return _verdict(
        "contact_preferences", False, f"{channel} at this time honours the debtor's preferences"
    )


def judge(
    account: Mapping[str, Any],
    debtor: Mapping[str, Any],
    channel: str,
    purpose: str,
    at: datetime,
    party: str,
    to: str | None,
    params: UkConcParameters = DEFAULTS,
) -> list[Verdict]:
    """Every applicable rule's verdict on one proposed contact (see the module docstring).

    ``to`` is not read (no rule here depends on the contact point); it is accepted so
    every pack's ``judge`` has the same signature.
    """
    if at.tzinfo is None:
        raise ValueError("at must be a timezone-aware datetime (the gate passes UTC)")
    zones, known = candidate_zones(debtor, params.default_time_zone)
    verdicts = [breathing_space(account, purpose, at)]
    with_debtor = party == "debtor"
    if channel not in NOT_TIMED:
        window = agreed_window(account) if with_debtor else None
        verdicts.append(unreasonable_hours(zones, known, at, window, params))
    if with_debtor and channel not in NOT_COMMUNICATION:
        verdicts.append(contact_preferences(zones, account, channel, at))
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
) -> Sequence[Verdict]:
    """CONC 7 and breathing-space verdicts on one proposed contact."""
    return judge(account, debtor, channel, purpose, at, party, None, PARAMETERS.active)
