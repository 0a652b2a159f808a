"""Hook specifications: the whole contract between Arrears and its plugins.

Every hook is prefixed ``arrears_``.  An implementation may accept any subset
of a hook's arguments (by name), so hooks grow by adding arguments only; an
argument is removed only in a major version, after ``warn_on_impl_args``.
Every hook is documented, with an example, in ``docs/plugins.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from plugins.types import Channel, Disclosure, MessageTemplate, Route, Verdict

PROJECT = "arrears"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --------------------------------------------------------------- contact rules


@hookspec
def arrears_contact_rules(
    account: Mapping[str, Any],
    debtor: Mapping[str, Any],
    channel: str,
    purpose: str,
    at: datetime,
    party: str,
    to: str | None,
) -> Sequence[Verdict]:
    """Judge one proposed contact with a debtor.

    Called for every proposed or recorded contact, once per plugin; all results
    are collected (no first result wins).

    :param account: a read-only view of the account (id, creditor, balances, status,
        the contact history the rules need).
    :param debtor: a read-only view of the debtor (time zone, jurisdiction, consents,
        opt-outs, representation).
    :param channel: the channel name, e.g. ``"sms"``, ``"email"``, ``"voice"``.
    :param purpose: why the contact is made, e.g. ``"collection"``, ``"validation_notice"``.
    :param at: the moment of the contact (timezone-aware, UTC).
    :param party: who is contacted: ``"debtor"``, ``"guarantor"`` or ``"third_party"``
        (someone asked only for the debtor's whereabouts).
    :param to: which of the debtor's contact points, as a label without personal data
        (``"phone:0"`` is the first phone number on file), or ``None`` when unknown.
    :return: zero or more ``Verdict`` (allow / block / warn, rule id and version,
        reason, legal citation); return an empty list when no rule applies.


    The keys of both views, the channels, purposes and parties, and how rule packs
    are chosen per account are the contract in ``docs/contact-views.md``.  A rule
    that raises blocks the contact (rules fail closed).

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 added ``party`` and ``to`` (opt-in: take them only if needed).
    """


# -------------------------------------------------------------------- channels


@hookspec
def arrears_channels() -> Sequence[Channel]:
    """Provide channels that send messages and report their delivery.

    Called once when the plugin manager is set up; all results are collected.

    :return: objects satisfying the ``Channel`` protocol, each with a unique ``name``.

    .. versionadded:: 0.1
    """


@hookspec
def arrears_message_templates(channel: str, locale: str) -> Sequence[MessageTemplate]:
    """Provide message templates for a channel and locale.

    Called when a message is rendered; all results are collected.

    :param channel: the channel the message will go out on.
    :param locale: a BCP 47 tag, e.g. ``"en-US"``.
    :return: the templates this plugin has for that channel and locale (may be empty).

    .. versionadded:: 0.1
    """


@hookspec
def arrears_required_disclosures(
    account: Mapping[str, Any], channel: str, locale: str, purpose: str
) -> Sequence[Disclosure]:
    """Name the disclosures a message must carry (e.g. an opt-out notice in every text).

    Called when a message is rendered; all results are collected and every one
    is appended to the message.

    :param account: a read-only view of the account.
    :param channel: the channel the message will go out on.
    :param locale: a BCP 47 tag, e.g. ``"en-US"``.
    :param purpose: why the message is sent.
    :return: zero or more ``Disclosure`` (rule id, text, citation).

    .. versionadded:: 0.1
    """


# -------------------------------------------------------------------- payments


@hookspec(firstresult=True)
def arrears_allocation_order(creditor: str) -> Sequence[str] | None:
    """The order in which a payment settles an account's components for a creditor.

    Called for every payment posted.  First result wins: the first plugin that
    returns something other than ``None`` decides; the built-in plugin answers
    ``("fees", "interest", "principal")`` last.

    :param creditor: the creditor of the account the payment is for.
    :return: each of ``"principal"``, ``"interest"`` and ``"fees"`` exactly once, or
        ``None`` to let the next plugin decide.

    .. versionadded:: 0.1
    """


# ------------------------------------------------------------------- observers


@hookspec
def arrears_event_committed(event: Any, position: int) -> None:
    """Observe an event after it is committed, for side effects.

    Called once per committed event, in ledger order; the event is already
    durable, so the return value is ignored.

    :param event: the committed domain event.
    :param position: its position in the ledger's notification log.
    :return: nothing.

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------- entry points


@hookspec
def arrears_cli_commands() -> Sequence[click.Command]:
    """Contribute commands to the ``arrears`` command line.

    Called once when the command line needs a command it does not have (or lists
    them for ``--help``); all results are collected.  A command whose name is
    already taken by Arrears is ignored.

    :return: click commands or groups.

    .. versionadded:: 0.1
    """


@hookspec
def arrears_http_routes() -> Sequence[Route]:
    """Contribute routes to the HTTP server.

    Called once when the server starts; all results are collected.

    :return: ``Route`` descriptions (method, path, handler, name).

    .. versionadded:: 0.1
    """
