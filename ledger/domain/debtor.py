"""The ``Debtor`` aggregate: the only stream that holds personal data.

Keeping names, phones, emails and addresses here (and nowhere in account
streams) means a person can later be encrypted with their own key and erased by
destroying it, while every account's history stays intact and verifiable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.domain import Aggregate

from ledger import errors

PERSONAL_FIELDS = ("name", "phones", "emails", "addresses")
CONTACT_FIELDS = ("phones", "emails", "addresses", "time_zone", "jurisdiction")


def check_time_zone(time_zone: str | None) -> str | None:
    if time_zone is None:
        return None
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.InvalidTimeZone(
            f"{time_zone!r} is not an IANA time zone such as 'America/New_York'",
            field="time_zone",
        ) from None
    return time_zone


#: What a telephone number may be written with; 7 to 15 digits (E.164 allows 15).
_PHONE_CHARS = re.compile(r"\+?[0-9 ().\-/]+(?:\s*(?:x|ext\.?)\s*[0-9]{1,6})?")
#: Deliberately loose: one @, something on each side, a dot in the domain.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def check_contact_points(phones: Sequence[str] | None, emails: Sequence[str] | None) -> None:
    """Refuse what cannot be a phone number or an e-mail address ("call me maybe").

    The message names the position, never the value: it is personal data."""
    for i, phone in enumerate(phones or ()):
        text = phone.strip() if isinstance(phone, str) else ""
        digits = sum(c.isdigit() for c in re.split(r"x|ext", text, maxsplit=1)[0])
        if not _PHONE_CHARS.fullmatch(text) or not 7 <= digits <= 15:
            raise errors.ValidationError(
                f"phones[{i}] is not a telephone number (7 to 15 digits, + and separators)",
                field=f"phones[{i}]",
            )
    for i, email in enumerate(emails or ()):
        if not isinstance(email, str) or not _EMAIL.fullmatch(email.strip()):
            raise errors.ValidationError(
                f"emails[{i}] is not an e-mail address", field=f"emails[{i}]"
            )


class Debtor(Aggregate):
    class Event(Aggregate.Event):
        class_version: ClassVar[int] = 1

    class Registered(Aggregate.Created):
        class_version: ClassVar[int] = 1
        name: str
        phones: list[str]
        emails: list[str]
        addresses: list[dict[str, str]]
        time_zone: str | None
        jurisdiction: str | None

        def apply(self, debtor: Debtor) -> None:
            debtor.name = self.name
            debtor.phones = list(self.phones)
            debtor.emails = list(self.emails)
            debtor.addresses = [dict(a) for a in self.addresses]
            debtor.time_zone = self.time_zone
            debtor.jurisdiction = self.jurisdiction

    class ContactDetailsChanged(Event):
        """Only the fields that changed are present (``None`` means unchanged)."""

        phones: list[str] | None
        emails: list[str] | None
        addresses: list[dict[str, str]] | None
        time_zone: str | None
        jurisdiction: str | None

        def apply(self, debtor: Debtor) -> None:
            for field in CONTACT_FIELDS:
                value = getattr(self, field)
                if isinstance(value, list):
                    value = [dict(v) if isinstance(v, dict) else v for v in value]
                if value is not None:
                    setattr(debtor, field, value)

    class PersonalDataErased(Event):
        reason: str

        def apply(self, debtor: Debtor) -> None:
            debtor.name = ""
            debtor.phones = []
            debtor.emails = []
            debtor.addresses = []
            debtor.erased = True

    def __init__(self) -> None:
        self.name = ""
        self.phones: list[str] = []
        self.emails: list[str] = []
        self.addresses: list[dict[str, str]] = []
        self.time_zone: str | None = None
        self.jurisdiction: str | None = None
        self.erased = False

    @classmethod
    def register(
        cls,
        *,
        at: datetime,
        debtor_id: UUID,
        name: str,
        phones: Sequence[str] = (),
        emails: Sequence[str] = (),
        addresses: Sequence[dict[str, str]] = (),
        time_zone: str | None = None,
        jurisdiction: str | None = None,
    ) -> Debtor:
        if not name.strip():
            raise errors.ValidationError("a debtor needs a name", field="name")
        check_contact_points(phones, emails)
        return cls._create(
            cls.Registered,
            id=debtor_id,
            timestamp=at,
            name=name,
            phones=list(phones),
            emails=list(emails),
            addresses=[dict(a) for a in addresses],
            time_zone=check_time_zone(time_zone),
            jurisdiction=jurisdiction,
        )

    def change_contact_details(self, *, at: datetime, **changes: Any) -> None:
        if self.erased:
            raise errors.PersonalDataErased("this debtor's personal data was erased")
        unknown = set(changes) - set(CONTACT_FIELDS)
        if unknown:
            raise errors.ValidationError(f"unknown contact fields: {', '.join(sorted(unknown))}")
        check_time_zone(changes.get("time_zone"))
        check_contact_points(changes.get("phones"), changes.get("emails"))
        fields = {f: changes.get(f) for f in CONTACT_FIELDS}
        # Copy the caller's lists: the event (and the state it builds) must not
        # change if the caller later mutates what it passed in.
        for f in ("phones", "emails"):
            value = fields[f]
            if value is not None:
                fields[f] = list(value)
        addresses = fields["addresses"]
        if addresses is not None:
            fields["addresses"] = [dict(a) for a in addresses]
        if all(v is None for v in fields.values()):
            raise errors.ValidationError("no contact detail to change")
        self.trigger_event(self.ContactDetailsChanged, timestamp=at, **fields)

    def erase_personal_data(self, *, at: datetime, reason: str) -> None:
        if self.erased:
            raise errors.PersonalDataErased("this debtor's personal data was already erased")
        self.trigger_event(self.PersonalDataErased, timestamp=at, reason=reason)
