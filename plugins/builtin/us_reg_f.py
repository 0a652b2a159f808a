"""``us_reg_f`` — the US Regulation F (12 CFR part 1006) / FDCPA contact rule pack.

Implements ``arrears_contact_rules`` (the rules below) and
``arrears_required_disclosures`` (the opt-out notice every email and text must
carry, 12 CFR 1006.6(e); served there rather than as a ``warn`` verdict).

Which contacts it judges
------------------------
The contact gate decides (``plugins.gate.PackMap``): by default the debtor's
``jurisdiction`` is ``"US"``, starts with ``"US-"`` (e.g. ``"US-IL"``), or is
unknown — treated as possibly US, the protective choice.  The proposed contact is
taken to be *outbound* (the gate judges what Arrears is about to send or place).
The pseudo-channel ``legal`` (a referral, not a communication) is judged by
``time_barred_suit`` alone.  The opt-out disclosure still checks the account's
``jurisdiction`` itself, since that hook is not called through the gate.

The views it reads (the contract with the contact gate)
-------------------------------------------------------
``account`` (a mapping; a missing key means "no" / "none"):

- ``ceased`` (bool) — a cease-communication request was received.
- ``dispute_awaiting_verification_within_validation`` (bool, optional) — derived flag;
  when absent it is derived from ``disputes``.
- ``disputes`` ({dispute id: {"status": str, "within_validation_period": bool}}) —
  as in ``Account.disputes``; a dispute pauses collection when its status is
  ``"awaiting_verification"`` and ``within_validation_period`` is true.
- ``attorney`` (mapping or None) — the debtor is represented; not None blocks.
- ``bankrupt`` (bool), ``deceased`` (bool) — a notice was received.
- ``consents`` ({channel: bool}) — ``False`` for a channel means the debtor opted out of
  it.  ``"phone"`` and ``"voice"`` are one medium (telephone): an opt-out of either
  blocks both.
- ``time_barred`` (bool) — the limitation period for suit has run.
- ``contacts`` — a list of ``{"channel", "direction", "outcome", "occurred_at"}``
  (``occurred_at`` a timezone-aware ``datetime``), covering **at least the 8 local
  days** before ``at``; older entries are ignored.  Contacts at or after ``at`` are
  ignored too, so a contact already recorded is not counted against itself.
- ``jurisdiction`` (str, optional) — read only by ``arrears_required_disclosures``,
  which has no debtor view; when absent the disclosure is always returned.

``debtor`` (a mapping):

- ``time_zone`` (IANA name or None) — where the debtor is.
- ``time_zones`` (optional list of IANA names) — when the information points to several
  locations (e.g. a phone's area code and the mailing address); ``time_zone`` is added
  to them when both are given.
- ``jurisdiction`` (str or None) — see above.

When neither ``time_zone`` nor ``time_zones`` is given — or a name is not a valid IANA
zone — the debtor's location is unknown and every zone in ``US_TIME_ZONES`` is used:
Hawaii (``Pacific/Honolulu``), Alaska (``America/Anchorage``), Pacific
(``America/Los_Angeles``), Arizona (``America/Phoenix``, no DST), Mountain
(``America/Denver``), Central (``America/Chicago``) and Eastern (``America/New_York``).
Territories (Puerto Rico, Guam, ...) are not in the default list; pass them in
``time_zones`` when the information points there.

The rules (rule ids ``us_reg_f.<name>``, all at version ``RULE_VERSION``)
------------------------------------------------------------------------
- ``inconvenient_time`` — every channel except ``letter`` (a letter communicates
  when the post delivers it, not when Arrears queues it): the local time must be
  in ``[08:00, 21:00)`` in **every** candidate zone (21:00:00 is blocked, 20:59:59
  and 08:00:00 are allowed).  Local times come from ``zoneinfo``, so DST changes
  are right.  12 CFR 1006.6(b)(1)(i), comment 6(b)(1)(i)-2.
- ``call_frequency`` — ``phone``/``voice`` only.  Days are *local calendar days* in
  the debtor's zone; with several candidate zones the rule is applied in each and
  blocks if it blocks in any.  The 7 consecutive days ending with the day of ``at``
  are that day and the 6 before it.  Call attempts are outbound phone contacts,
  except outcomes ``busy`` and ``failed`` (calls not connected to the dialed number
  do not count, 12 CFR 1006.14(b)(3)).  With 7 attempts already in those days the
  call (the 8th) is blocked; the 7th is allowed.  An attempt on the same local
  weekday a week earlier is outside the window.  12 CFR 1006.14(b)(2)(i)(A).
  Calls made with the debtor's prior consent (``call_consents``: a period the debtor
  agreed to directly, given within the 7 days before the call) neither count nor are
  limited: both call rules then answer ``allow`` citing 12 CFR 1006.14(b)(3)(i).
- ``call_after_conversation`` — ``phone``/``voice`` only.  A telephone conversation is
  a phone contact (either direction) with outcome ``right_party_contact``.  Its local
  day is day 1; calls on days 1-7 are blocked, day 8 is allowed.
  12 CFR 1006.14(b)(2)(i)(B).
- ``cease_communication`` — after a cease request only the notices FDCPA 805(c)
  allows may be sent: purposes in ``CEASE_ALLOWED_PURPOSES`` —
  ``cease_acknowledgement`` (efforts are being terminated) and ``remedy_notice``
  (the collector may or will invoke a specified remedy).  Everything else is
  blocked.  15 U.S.C. 1692c(c); 12 CFR 1006.6(c).
- ``dispute_pause`` — while a dispute received within the validation period awaits
  verification, collection stops: every purpose except ``verification_notice`` (the
  verification itself) is blocked.  A dispute outside the validation period does
  not pause.  12 CFR 1006.38(d)(2).
- ``channel_opt_out`` — a channel the debtor opted out of is blocked.
  12 CFR 1006.14(h); 12 CFR 1006.6(e).
- ``attorney`` — blocked: contact the attorney instead.  15 U.S.C. 1692c(a)(2);
  12 CFR 1006.6(b)(2).
- ``bankruptcy`` — blocked (automatic stay).  11 U.S.C. 362(a)(6).
- ``deceased`` — blocked: deal with the estate's personal representative.
  12 CFR 1006.6(a)(4).
- ``time_barred_suit`` — on a time-barred debt, purposes ``legal_referral`` and
  ``threaten_suit`` are blocked.  12 CFR 1006.26(b).

Verdict policy: every rule that *applies* to the contact (its channel, or its
purpose for ``time_barred_suit``) returns exactly one verdict, ``block`` or
``allow``; a rule that does not apply (call rules for an email, the time rule for a
letter, the suit rule for a collection call) returns none.  So the verdicts list
every rule that was checked, which is what an audit needs.  The pack emits no
``warn``: the opt-out notice is served by ``arrears_required_disclosures``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plugins.builtin.packkit import verdicts_for
from plugins.hookspecs import hookimpl
from plugins.types import Disclosure, Verdict

PACK = "us_reg_f"
#: Marks this module as a rule pack: the gate calls it only for accounts whose
#: debtor's jurisdiction maps to it (``plugins.gate.PackMap``: US-* and unknown).
RULE_PACK = PACK
RULE_VERSION = "1"

US_TIME_ZONES: tuple[str, ...] = (
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Phoenix",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
)
EARLIEST = time(8, 0)
LATEST = time(21, 0)  # exclusive: 21:00:00 is inconvenient

TELEPHONE = frozenset({"phone", "voice"})
ELECTRONIC = frozenset({"email", "sms"})
NOT_TIMED = frozenset({"letter"})
#: Not a communication: a legal action such as a referral.  Only ``time_barred_suit``
#: judges it.
LEGAL = "legal"
CONSENT_MAX_AGE = timedelta(days=7)
PRIOR_CONSENT_CITATION = "12 CFR 1006.14(b)(3)(i)"
NOT_CONNECTED = frozenset({"busy", "failed"})
MAX_CALLS = 7
WINDOW_DAYS = 7

CEASE_ALLOWED_PURPOSES = frozenset({"cease_acknowledgement", "remedy_notice"})
DISPUTE_ALLOWED_PURPOSES = frozenset({"verification_notice"})
SUIT_PURPOSES = frozenset({"legal_referral", "threaten_suit"})

CITATIONS: dict[str, str] = {
    "inconvenient_time": "12 CFR 1006.6(b)(1)(i)",
    "call_frequency": "12 CFR 1006.14(b)(2)(i)(A)",
    "call_after_conversation": "12 CFR 1006.14(b)(2)(i)(B)",
    "cease_communication": "15 U.S.C. 1692c(c); 12 CFR 1006.6(c)",
    "dispute_pause": "12 CFR 1006.38(d)(2)",
    "channel_opt_out": "12 CFR 1006.14(h); 12 CFR 1006.6(e)",
    "attorney": "15 U.S.C. 1692c(a)(2); 12 CFR 1006.6(b)(2)",
    "bankruptcy": "11 U.S.C. 362(a)(6)",
    "deceased": "12 CFR 1006.6(a)(4)",
    "time_barred_suit": "12 CFR 1006.26(b)",
    "opt_out_notice": "12 CFR 1006.6(e)",
}

OPT_OUT_TEXT: dict[str, dict[str, str]] = {
    "sms": {
        "en": "Reply STOP to stop texts from us.",
        "es": "Responda STOP para dejar de recibir mensajes de texto.",
    },
    "email": {
        "en": "To stop emails from us, use the unsubscribe link or reply STOP.",
        "es": "Para dejar de recibir correos, use el enlace para darse de baja o responda STOP.",
    },
}


_verdict = verdicts_for(PACK, RULE_VERSION, CITATIONS)


def applies_to(jurisdiction: object) -> bool:
    """US or unknown jurisdictions are judged by this pack."""
    if jurisdiction is None or jurisdiction == "":
        return True
    code = str(jurisdiction).upper()
    return code == "US" or code.startswith("US-")


def candidate_zones(debtor: Mapping[str, Any]) -> tuple[list[ZoneInfo], bool]:
    """The zones the debtor may be in, and whether the location was known."""
    names: list[str] = [str(n) for n in debtor.get("time_zones") or ()]
    if debtor.get("time_zone"):
        names.append(str(debtor["time_zone"]))
    zones: list[ZoneInfo] = []
    for name in dict.fromkeys(names):
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            return [ZoneInfo(n) for n in US_TIME_ZONES], False
    if not zones:
        return [ZoneInfo(n) for n in US_TIME_ZONES], False
    return zones, True


# ------------------------------------------------------------------------ rules


def inconvenient_time(zones: Sequence[ZoneInfo], known: bool, at: datetime) -> Verdict:
    bad = []
    for zone in zones:
        local = at.astimezone(zone)
        if not EARLIEST <= local.time().replace(tzinfo=None) < LATEST:
            bad.append(f"{local:%H:%M} in {zone.key}")
    where = "the debtor's time zone" if known else "every US time zone (location unknown)"
    if len(zones) > 1 and known:
        where = "every time zone the debtor may be in"
    if bad:
        # It must be convenient in every candidate zone; say which ones it is not.
        scope = "the debtor's time zone" if len(zones) == 1 else "a time zone the debtor may be in"
        if not known and len(zones) > 1:
            scope = "a US time zone the debtor may be in (location unknown)"
        return _verdict(
            "inconvenient_time",
            True,
            f"outside 08:00-21:00 local time in {scope}: it would be {', '.join(bad)}",
        )
    return _verdict("inconvenient_time", False, f"between 08:00 and 21:00 in {where}")


def _phone_contacts(account: Mapping[str, Any], at: datetime) -> list[Mapping[str, Any]]:
    earliest = at - timedelta(days=WINDOW_DAYS + 2)  # local days never exceed 8 x 24 h + offset
    return [
        c
        for c in account.get("contacts") or ()
        if c.get("channel") in TELEPHONE and earliest <= c["occurred_at"] < at
    ]


def _local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def consented(account: Mapping[str, Any], moment: datetime) -> bool:
    """A call at ``moment`` falls in a period the debtor agreed to directly, within the
    7 days before it (12 CFR 1006.14(b)(3)(i)): it neither counts nor is limited."""
    return any(
        c["given_at"] <= moment <= c["until"] and moment - c["given_at"] <= CONSENT_MAX_AGE
        for c in account.get("call_consents") or ()
    )


def prior_consent(account: Mapping[str, Any], at: datetime) -> Verdict | None:
    if not consented(account, at):
        return None
    return Verdict(
        "allow",
        f"{PACK}.call_frequency",
        RULE_VERSION,
        "the debtor gave prior consent directly, within the last 7 days, to calls at this "
        "time: the call-frequency limits do not apply",
        PRIOR_CONSENT_CITATION,
    )


def call_frequency(zones: Sequence[ZoneInfo], account: Mapping[str, Any], at: datetime) -> Verdict:
    calls = [
        c
        for c in _phone_contacts(account, at)
        if c.get("direction") == "outbound"
        and c.get("outcome") not in NOT_CONNECTED
        and not consented(account, c["occurred_at"])
    ]
    worst = 0
    for zone in zones:
        today = _local_day(at, zone)
        first = today - timedelta(days=WINDOW_DAYS - 1)
        worst = max(worst, sum(1 for c in calls if _local_day(c["occurred_at"], zone) >= first))
    if worst >= MAX_CALLS:
        return _verdict(
            "call_frequency",
            True,
            f"{worst} call attempts about this debt already in the last {WINDOW_DAYS} days; "
            f"this call would exceed {MAX_CALLS}",
        )
    return _verdict(
        "call_frequency",
        False,
        f"call attempt {worst + 1} of at most {MAX_CALLS} in {WINDOW_DAYS} consecutive days",
    )


def call_after_conversation(
    zones: Sequence[ZoneInfo], account: Mapping[str, Any], at: datetime
) -> Verdict:
    talks = [c for c in _phone_contacts(account, at) if c.get("outcome") == "right_party_contact"]
    for zone in zones:
        today = _local_day(at, zone)
        for talk in talks:
            day = (today - _local_day(talk["occurred_at"], zone)).days + 1
            if day <= WINDOW_DAYS:
                when = _local_day(talk["occurred_at"], zone).isoformat()
                return _verdict(
                    "call_after_conversation",
                    True,
                    f"a telephone conversation about this debt on {when} ({zone.key}); "
                    f"this would be day {day} of the {WINDOW_DAYS} days after it",
                )
    return _verdict(
        "call_after_conversation",
        False,
        f"no telephone conversation about this debt in the last {WINDOW_DAYS} days",
    )


def _dispute_pauses(account: Mapping[str, Any]) -> bool:
    derived = account.get("dispute_awaiting_verification_within_validation")
    if derived is not None:
        return bool(derived)
    disputes: Mapping[str, Mapping[str, Any]] = account.get("disputes") or {}
    return any(
        d.get("status") == "awaiting_verification" and d.get("within_validation_period")
        for d in disputes.values()
    )


def _opted_out(account: Mapping[str, Any], channel: str) -> bool:
    consents: Mapping[str, Any] = account.get("consents") or {}
    same: Iterable[str] = TELEPHONE if channel in TELEPHONE else (channel,)
    return any(consents.get(name) is False for name in same)


def judge(
    account: Mapping[str, Any],
    debtor: Mapping[str, Any],
    channel: str,
    purpose: str,
    at: datetime,
) -> list[Verdict]:
    """Every applicable rule's verdict on one proposed contact (see the module docstring)."""
    if channel == LEGAL:
        # Whatever the stated purpose, a step on the legal channel is legal action.
        return time_barred_suit(account, purpose if purpose in SUIT_PURPOSES else "legal_referral")
    zones, known = candidate_zones(debtor)
    verdicts: list[Verdict] = []
    if channel not in NOT_TIMED:
        verdicts.append(inconvenient_time(zones, known, at))
    if channel in TELEPHONE:
        consent = prior_consent(account, at)
        if consent is not None:
            verdicts.append(consent)
            verdicts.append(
                Verdict(
                    "allow",
                    f"{PACK}.call_after_conversation",
                    RULE_VERSION,
                    "prior consent given directly by the debtor within the last 7 days",
                    PRIOR_CONSENT_CITATION,
                )
            )
        else:
            verdicts.append(call_frequency(zones, account, at))
            verdicts.append(call_after_conversation(zones, account, at))

    ceased = bool(account.get("ceased"))
    if ceased and purpose not in CEASE_ALLOWED_PURPOSES:
        verdicts.append(
            _verdict(
                "cease_communication",
                True,
                f"the debtor asked us to stop communicating; a {purpose!r} message is not "
                "one of the notices the law still allows "
                f"({', '.join(sorted(CEASE_ALLOWED_PURPOSES))})",
            )
        )
    else:
        reason = (
            f"a {purpose!r} notice is allowed after a cease request"
            if ceased
            else "no cease-communication request"
        )
        verdicts.append(_verdict("cease_communication", False, reason))

    paused = _dispute_pauses(account)
    if not paused:
        reason = "no dispute within the validation period awaits verification"
    elif purpose in DISPUTE_ALLOWED_PURPOSES:
        reason = "sending the verification a pending dispute awaits"
    else:
        reason = (
            "collection is paused: a dispute received within the validation period "
            "awaits verification"
        )
    verdicts.append(
        _verdict("dispute_pause", paused and purpose not in DISPUTE_ALLOWED_PURPOSES, reason)
    )
    out = _opted_out(account, channel)
    verdicts.append(
        _verdict(
            "channel_opt_out",
            out,
            f"the debtor opted out of {channel}"
            if out
            else f"the debtor has not opted out of {channel}",
        )
    )
    has_attorney = account.get("attorney") is not None
    verdicts.append(
        _verdict(
            "attorney",
            has_attorney,
            "the debtor is represented by an attorney: contact the attorney instead"
            if has_attorney
            else "no attorney representation notified",
        )
    )
    bankrupt = bool(account.get("bankrupt"))
    verdicts.append(
        _verdict(
            "bankruptcy",
            bankrupt,
            "a bankruptcy was notified: the automatic stay forbids collection contact"
            if bankrupt
            else "no bankruptcy notified",
        )
    )
    deceased = bool(account.get("deceased"))
    verdicts.append(
        _verdict(
            "deceased",
            deceased,
            "the debtor is reported deceased: deal with the estate's personal representative"
            if deceased
            else "no death notified",
        )
    )
    verdicts.extend(time_barred_suit(account, purpose))
    return verdicts


def time_barred_suit(account: Mapping[str, Any], purpose: str) -> list[Verdict]:
    if purpose not in SUIT_PURPOSES:
        return []
    barred = bool(account.get("time_barred"))
    return [
        _verdict(
            "time_barred_suit",
            barred,
            f"the debt is time-barred: no suit and no threat of suit ({purpose})"
            if barred
            else "the debt is not time-barred",
        )
    ]


# ------------------------------------------------------------------------ hooks


@hookimpl
def arrears_contact_rules(
    account: Mapping[str, Any],
    debtor: Mapping[str, Any],
    channel: str,
    purpose: str,
    at: datetime,
) -> Sequence[Verdict]:
    """Regulation F / FDCPA verdicts on one proposed contact."""
    return judge(account, debtor, channel, purpose, at)


@hookimpl
def arrears_required_disclosures(
    account: Mapping[str, Any], channel: str, locale: str, purpose: str
) -> Sequence[Disclosure]:
    """The opt-out notice every email and text carries (12 CFR 1006.6(e))."""
    if channel not in ELECTRONIC or not applies_to(account.get("jurisdiction")):
        return []
    texts = OPT_OUT_TEXT[channel]
    language = locale.split("-")[0].lower()
    return [
        Disclosure(
            f"{PACK}.opt_out_notice", texts.get(language, texts["en"]), CITATIONS["opt_out_notice"]
        )
    ]
