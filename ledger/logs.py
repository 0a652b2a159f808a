"""Structured logging for Arrears, with personal data kept out of every log line.

Why this module exists: a debt-collection ledger handles debtors' names, phone
numbers, e-mail addresses and postal addresses all day, and log lines are
copied to places (terminals, log shippers, support tickets) that must never
hold them. So logging is configured in exactly one place, and the last step
before rendering is :func:`redact_personal_data`, which scrubs the whole event
dict in three layers -- because "whatever is logged" means no single technique
is enough:

1. **By key** -- values under keys that name personal data (``name``,
   ``debtor_phone``, ``email``, ``postcode``, ...; at any nesting depth) are
   replaced wholesale, so even unrecognisable formats never leak.
2. **By value** -- every string anywhere in the event (the message, nested
   values, rendered tracebacks, string keys) is scanned for e-mail addresses and
   phone numbers, which have a recognisable shape.
3. **By registry** -- names and postal addresses have no shape a regex could
   catch, so the ledger registers the concrete values it sees with
   :func:`register_personal_values`; any registered value is then scrubbed
   wherever it turns up (case-insensitive substring match).

Public API: :func:`configure_logging`, :func:`get_logger`,
:func:`reset_logging`, :func:`redact_personal_data`, :func:`scrub_text`,
:func:`register_personal_values`, :func:`forget_personal_values`,
:func:`clear_personal_values`, :func:`personal_values` and
:class:`PersonalValueRegistry`.

Known limits (deliberate): integers and floats are not pattern-scanned (amounts,
counts and ids are numbers far more often than phone numbers are; numbers under
a personal key are still redacted), and records sent through the standard
library's :mod:`logging` module do not pass through this chain.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Final, TextIO

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from ledger import errors

__all__ = [
    "MAX_PERSONAL_VALUES",
    "REDACTED",
    "REDACTED_EMAIL",
    "REDACTED_PHONE",
    "InvalidLogLevel",
    "PersonalValueRegistry",
    "check_log_level",
    "clear_personal_values",
    "configure_logging",
    "forget_personal_values",
    "get_logger",
    "personal_values",
    "redact_personal_data",
    "register_personal_values",
    "reset_logging",
    "scrub_text",
]

REDACTED: Final = "[redacted]"
"""Replaces values under personal keys and registered personal values."""

REDACTED_EMAIL: Final = "[redacted-email]"
"""Replaces anything shaped like an e-mail address."""

REDACTED_PHONE: Final = "[redacted-phone]"
"""Replaces anything shaped like a phone number."""

MAX_PERSONAL_VALUES: Final = 100_000
"""Default bound of the registry, so a long-running process cannot grow without limit."""

MIN_PERSONAL_VALUE_LENGTH: Final = 3
"""Shorter values are ignored: two letters would redact fragments of ordinary words."""

_MAX_DEPTH: Final = 32
"""Nesting depth after which values are dropped; also protects against cyclic containers."""


# ---------------------------------------------------------------------------
# Layer 1: redaction by key
# ---------------------------------------------------------------------------

# Matched against the key's trailing snake_case tokens, so ``debtor_phone`` and
# ``guarantor_email_address`` hit ``phone`` and ``address``. camelCase is
# normalised first and trailing digits dropped (``addressLine2``).
_PERSONAL_FIELDS: Final = frozenset(
    {
        # names
        "name", "names", "first_name", "firstname", "last_name", "lastname",
        "full_name", "fullname", "middle_name", "given_name", "family_name",
        "surname", "forename", "maiden_name", "username",
        # phones
        "phone", "phones", "phone_number", "phonenumber", "telephone", "tel",
        "mobile", "mobile_number", "fax", "msisdn",
        # e-mail
        "email", "emails", "e_mail", "email_address",
        # postal addresses
        "address", "addresses", "postal_address", "street", "street_address",
        "address_line", "house_number", "city", "town", "postcode", "post_code",
        "postal_code", "zip", "zip_code", "zipcode",
        # other identifiers of a person
        "date_of_birth", "dob", "birth_date", "birthdate", "birthday",
        "ssn", "national_id", "national_insurance_number", "nino", "tax_id",
        "passport_number", "iban",
    }
)  # fmt: skip

# Unambiguous fields also caught when glued to a prefix without a separator
# (``debtorphone``, ``contactemail``); deliberately not ``name`` (``filename``).
_GLUED_PERSONAL_SUFFIXES: Final = ("phone", "email", "mobile", "address")

# Keys that usually hold a *person*: a plain string there is most likely the
# person's name, so it is redacted; containers are recursed into instead so
# that ids inside them survive.
_PERSON_KEYS: Final = frozenset(
    {"debtor", "customer", "person", "contact", "guarantor", "payer", "recipient"}
)

# Technical ``*_name`` keys that would otherwise match the ``name`` suffix.
_NON_PERSONAL_KEYS: Final = frozenset(
    {
        "logger", "logger_name", "func_name", "module_name", "file_name",
        "event_name", "class_name", "method_name", "command_name", "plugin_name",
        "table_name", "column_name", "field_name", "host_name", "service_name",
        "app_name", "queue_name", "topic_name", "task_name", "thread_name",
        "process_name", "level_name", "type_name", "aggregate_name",
        "stream_name", "index_name", "schema_name", "database_name", "db_name",
        "bucket_name", "job_name", "currency_name", "env_name", "key_name",
    }
)  # fmt: skip

_CAMEL_BOUNDARY: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM: Final = re.compile(r"[^a-z0-9]+")

_KEY_PLAIN: Final = 0
_KEY_PERSONAL: Final = 1
_KEY_PERSON: Final = 2


@lru_cache(maxsize=4096)
def _classify_key(key: str) -> int:
    """Classify a key once; log keys repeat constantly, hence the cache."""
    snake = _CAMEL_BOUNDARY.sub("_", key).lower()
    tokens = [token.rstrip("0123456789") for token in _NON_ALNUM.split(snake)]
    tokens = [token for token in tokens if token]
    if not tokens:
        return _KEY_PLAIN
    normalised = "_".join(tokens)
    if normalised in _NON_PERSONAL_KEYS:
        return _KEY_PLAIN
    for start in range(len(tokens)):
        if "_".join(tokens[start:]) in _PERSONAL_FIELDS:
            return _KEY_PERSONAL
    if tokens[-1].endswith(_GLUED_PERSONAL_SUFFIXES):
        return _KEY_PERSONAL
    if tokens[-1] in _PERSON_KEYS:
        return _KEY_PERSON
    return _KEY_PLAIN


def _redact_by_key(key: str, value: object) -> bool:
    """Whether *value* must be replaced outright because of the key it sits under.

    ``None``, booleans and empty strings carry no personal data (``has_phone=True``
    is useful and harmless), so they are kept.
    """
    if value is None or isinstance(value, bool) or value == "":
        return False
    kind = _classify_key(key)
    if kind == _KEY_PERSONAL:
        return True
    return kind == _KEY_PERSON and isinstance(value, str)


# ---------------------------------------------------------------------------
# Layer 2: redaction by value shape (e-mail addresses and phone numbers)
# ---------------------------------------------------------------------------

# RFC 5322 "atext" plus dots for the local part; the look-behind anchors every
# attempt at the start of a run, which keeps matching linear on long tokens.
_EMAIL_LOCAL_CHAR: Final = r"[\w!#$%&'*+/=?^`{|}~.\-]"
_EMAIL_RE: Final = re.compile(
    rf"(?<!{_EMAIL_LOCAL_CHAR}){_EMAIL_LOCAL_CHAR}+@[\w\-]+(?:\.[\w\-]+)+"
)

# A phone number is a run of digit "chunks" separated by single spaces, with an
# optional leading "+", where a chunk is digits joined by dashes
# (555-123-4567), digits joined by two or more dots (06.12.34.56.78, but not the
# amount 1200.00) or an area code in parentheses ((555), (0)).
#
# What keeps it off non-personal data:
# * it may not start right after a letter, digit, "_", ".", ",", "-", "/" or
#   "+", nor end right before a letter/digit or before ".5", ",5", "/5", "-x" --
#   so fragments of UUIDs, ISO timestamps, hashes, amounts (1200.00, 1,200.00)
#   and references (ACC-000123) never match;
# * a chunk may not begin with a calendar date (2026-11-30, 30.11.2026) or a
#   UUID made only of digits;
# * the digit-count rules in ``_is_phone``.
_DATE: Final = (
    r"(?:\d{4}[-.](?:0?[1-9]|1[0-2])[-.](?:0?[1-9]|[12]\d|3[01])(?!\d)"
    r"|(?:0?[1-9]|[12]\d|3[01])[-.](?:0?[1-9]|[12]\d|3[01])[-.]\d{4}(?!\d))"
)
_UUID_START: Final = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-"
_PHONE_CHUNK: Final = (
    rf"(?:\(\d{{1,5}}\)|(?!{_DATE}|{_UUID_START})\d+(?:-\d+)*|(?!{_DATE})\d+(?:\.\d+){{2,}})"
)
_PHONE_GAP: Final = r"(?:[ \t\u00a0]|(?<=\))[.\-]?|(?=\())"
_PHONE_RE: Final = re.compile(
    rf"(?<![\w.,\-/+])(?:\+[ \t]?)?{_PHONE_CHUNK}(?:{_PHONE_GAP}{_PHONE_CHUNK})*"
    r"(?!\w)(?![.,/]\d)(?!-\w)"
)
_MIN_PHONE_DIGITS: Final = 7


def _is_phone(candidate: str) -> bool:
    """Decide whether a shape-matched candidate is a phone number.

    Written phone numbers (with separators, a ``+`` or parentheses) need at least
    seven digits. A bare run of digits is ambiguous -- it is just as likely an
    amount in minor units or a counter -- so it only counts when it looks
    dialable: a trunk/international prefix (``07911123456``, ``0044...``) or
    the length of a full national/E.164 number (10 to 15 digits).
    """
    digits = sum(ch.isdigit() for ch in candidate)
    if digits < _MIN_PHONE_DIGITS:
        return False
    bare = candidate.removeprefix("+")
    if not bare.isdigit():
        return True
    return candidate.startswith(("+", "0")) or 10 <= digits <= 15


# ---------------------------------------------------------------------------
# Layer 3: registry of known personal values (names, postal addresses)
# ---------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Lower-case *text* without changing its length, so offsets map back 1:1."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)


class PersonalValueRegistry:
    """A bounded, thread-safe set of personal values to scrub from log text.

    Why not one big compiled alternation regex: measured with 100,000 names, a
    plain ``a|b|c`` pattern takes over a second *per string* to search, and a
    prefix-trie pattern takes ~4.5 s to rebuild -- paid again after every
    registration, which in a ledger happens whenever a new debtor is seen. Here
    values are indexed by their first three (lower-cased) characters instead:
    registering and forgetting are O(1), nothing is ever recompiled, and a
    search costs one dict lookup per character of text (~0.3 us/char in
    CPython). Buckets are immutable tuples (replaced, never mutated) so the
    log path reads them without taking the lock.

    Eviction is least-recently-registered first; registering a value again
    refreshes it.
    """

    def __init__(self, max_size: int = MAX_PERSONAL_VALUES) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._max_size = max_size
        self._values: OrderedDict[str, None] = OrderedDict()
        self._index: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and _fold(value.strip()) in self._values

    @staticmethod
    def _normalise(values: Iterable[str]) -> list[str]:
        keys: list[str] = []
        for value in values:
            if not isinstance(value, str):
                raise TypeError(f"personal values must be str, not {type(value).__name__}")
            key = _fold(value.strip())
            if len(key) >= MIN_PERSONAL_VALUE_LENGTH:
                keys.append(key)
        return keys

    def register(self, *values: str) -> tuple[str, ...]:
        """Add values; return the normalised keys that were not already present."""
        added: list[str] = []
        with self._lock:
            for key in self._normalise(values):
                if key in self._values:
                    self._values.move_to_end(key)
                    continue
                self._values[key] = None
                self._index_add(key)
                added.append(key)
            while len(self._values) > self._max_size:
                evicted, _ = self._values.popitem(last=False)
                self._index_remove(evicted)
        return tuple(added)

    def forget(self, *values: str) -> None:
        """Remove values (e.g. after an erasure request); unknown values are ignored."""
        with self._lock:
            for key in self._normalise(values):
                if self._values.pop(key, 0) is None:
                    self._index_remove(key)

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._values.clear()
            self._index = {}

    def _index_add(self, key: str) -> None:
        prefix = key[:MIN_PERSONAL_VALUE_LENGTH]
        bucket = (*self._index.get(prefix, ()), key)
        # Longest first, so the first hit at a position is the longest match.
        self._index[prefix] = tuple(sorted(bucket, key=len, reverse=True))

    def _index_remove(self, key: str) -> None:
        prefix = key[:MIN_PERSONAL_VALUE_LENGTH]
        bucket = tuple(v for v in self._index.get(prefix, ()) if v != key)
        if bucket:
            self._index[prefix] = bucket
        else:
            self._index.pop(prefix, None)

    def find_spans(self, text: str) -> list[tuple[int, int]]:
        """Return ``(start, end)`` of each registered value in *text*.

        Leftmost-longest and non-overlapping, case-insensitive.
        """
        index = self._index
        if not index or len(text) < MIN_PERSONAL_VALUE_LENGTH:
            return []
        folded = _fold(text)
        spans: list[tuple[int, int]] = []
        position = 0
        last_start = len(folded) - MIN_PERSONAL_VALUE_LENGTH
        lookup = index.get
        while position <= last_start:
            bucket = lookup(folded[position : position + MIN_PERSONAL_VALUE_LENGTH])
            if bucket:
                for key in bucket:
                    if folded.startswith(key, position):
                        spans.append((position, position + len(key)))
                        position += len(key)
                        break
                else:
                    position += 1
            else:
                position += 1
        return spans


_REGISTRY: Final = PersonalValueRegistry()


def register_personal_values(*values: str) -> None:
    """Make known personal values (a debtor's name, postal address, ...) unloggable.

    Call this whenever the ledger sees such a value: names and addresses have
    no pattern a regex could catch, so from now on any occurrence in any logged
    string (case-insensitive) is replaced with ``[redacted]``. Values shorter
    than three characters (after stripping) are ignored. Register every form
    you expect to be logged (``"Jane Doe"``, ``"Doe"``, ``"Jane"``).
    """
    _REGISTRY.register(*values)


def forget_personal_values(*values: str) -> None:
    """Stop tracking values, e.g. when a debtor's data is erased."""
    _REGISTRY.forget(*values)


def clear_personal_values() -> None:
    """Forget every registered personal value."""
    _REGISTRY.clear()


@contextmanager
def personal_values(*values: str) -> Iterator[None]:
    """Register values for the duration of a block (one request, one import row).

    On exit only the values this block added are forgotten, so values that were
    registered before entering stay protected.
    """
    added = _REGISTRY.register(*values)
    try:
        yield
    finally:
        _REGISTRY.forget(*added)


# ---------------------------------------------------------------------------
# The processor
# ---------------------------------------------------------------------------

_EMAIL_PRIORITY: Final = 2
_PHONE_PRIORITY: Final = 1
_REGISTERED_PRIORITY: Final = 0
_PLACEHOLDERS: Final = {
    _EMAIL_PRIORITY: REDACTED_EMAIL,
    _PHONE_PRIORITY: REDACTED_PHONE,
    _REGISTERED_PRIORITY: REDACTED,
}


def scrub_text(text: str) -> str:
    """Replace e-mail addresses, phone numbers and registered values in *text*.

    All three detectors run on the original text and their spans are merged
    before replacing, so one placeholder never gets partly re-redacted by
    another detector. Also useful outside logging (e.g. error messages shown
    to operators).
    """
    spans: list[tuple[int, int, int]] = []
    if "@" in text:
        spans.extend((m.start(), m.end(), _EMAIL_PRIORITY) for m in _EMAIL_RE.finditer(text))
    spans.extend(
        (m.start(), m.end(), _PHONE_PRIORITY)
        for m in _PHONE_RE.finditer(text)
        if _is_phone(m.group())
    )
    spans.extend((start, end, _REGISTERED_PRIORITY) for start, end in _REGISTRY.find_spans(text))
    if not spans:
        return text
    spans.sort()
    merged: list[list[int]] = []
    for start, end, priority in spans:
        if merged and start < merged[-1][1]:
            last = merged[-1]
            last[1] = max(last[1], end)
            last[2] = max(last[2], priority)
        else:
            merged.append([start, end, priority])
    parts: list[str] = []
    cursor = 0
    for start, end, priority in merged:
        parts.append(text[cursor:start])
        parts.append(_PLACEHOLDERS[priority])
        cursor = end
    parts.append(text[cursor:])
    return "".join(parts)


def _scrub_key(key: object) -> object:
    if isinstance(key, str):
        return scrub_text(key)
    if key is None or isinstance(key, int | float):
        return key
    return scrub_text(str(key))


def _scrub_mapping(mapping: Mapping[Any, object], depth: int) -> dict[object, object]:
    scrubbed: dict[object, object] = {}
    for key, value in mapping.items():
        if isinstance(key, str) and _redact_by_key(key, value):
            scrubbed[_scrub_key(key)] = REDACTED
        else:
            scrubbed[_scrub_key(key)] = _scrub_value(value, depth + 1)
    return scrubbed


def _scrub_value(value: object, depth: int) -> object:
    """Return a scrubbed copy of *value*, reduced to JSON-friendly types.

    Objects the renderer would otherwise ``repr()`` (dataclasses, named tuples,
    exceptions, UUIDs, decimals, ...) are converted here -- dataclasses and
    named tuples to dicts so their field names get the by-key treatment,
    everything else to ``str`` so the text is scanned -- because a ``repr``
    produced after this processor would bypass it.
    """
    if isinstance(value, str):
        return scrub_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= _MAX_DEPTH:
        return "[truncated]"
    if isinstance(value, Mapping):
        return _scrub_mapping(value, depth)
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return _scrub_mapping(value._asdict(), depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _scrub_mapping(fields, depth)
    if isinstance(value, list | tuple | set | frozenset):
        items = [_scrub_value(item, depth + 1) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    custom = getattr(value, "__structlog__", None)
    if callable(custom):
        return _scrub_value(custom(), depth + 1)
    try:
        text = str(value)
    except Exception:
        return "[unrepresentable]"
    return scrub_text(text)


def redact_personal_data(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    """structlog processor: keep debtors' personal data out of the log line.

    Applies redaction by key, by value shape and by registry (see the module
    docstring) to the entire event dict, recursively. It must run after
    ``format_exc_info`` so rendered tracebacks are scrubbed too; if an
    ``exc_info`` is still present (processor placed earlier), it is formatted
    here for the same reason.
    """
    if event_dict.get("exc_info"):
        event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
    scrubbed = _scrub_mapping(event_dict, 0)
    return {str(key): value for key, value in scrubbed.items()}


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

_STATE_UNCONFIGURED: Final = 0
_STATE_DEFAULT: Final = 1
_STATE_EXPLICIT: Final = 2
_state = _STATE_UNCONFIGURED
_state_lock = threading.Lock()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


class InvalidLogLevel(errors.ValidationError, ValueError):
    """A log level that :mod:`logging` does not know (``ARREARS_LOG_LEVEL=verbose``).

    A :class:`~ledger.errors.LedgerError`, so entry points print it as one line; and
    a :class:`ValueError`, as it always was."""


def _level_number(level: str) -> int:
    mapping = logging.getLevelNamesMapping()
    number = mapping.get(level.strip().upper())
    if number is None:
        valid = ", ".join(sorted(name for name in mapping if name != "NOTSET"))
        raise InvalidLogLevel(
            f"unknown log level {level!r}; expected one of {valid}", field="log_level"
        )
    return number


def check_log_level(level: str) -> str:
    """``level`` as :mod:`logging` names it (``"warning"`` -> ``"WARNING"``).

    Raises :class:`InvalidLogLevel` for a level it does not know, listing the valid ones."""
    return logging.getLevelName(_level_number(level))


def _apply(level: str, json: bool | None, stream: TextIO | None) -> None:
    out = stream if stream is not None else sys.stderr
    tty = _is_tty(out)
    use_json = not tty if json is None else json
    renderer: Processor
    if use_json:
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=tty and "NO_COLOR" not in os.environ)
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redact_personal_data,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_level_number(level)),
        context_class=dict,
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )


def configure_logging(
    *,
    level: str = "INFO",
    json: bool | None = None,
    stream: TextIO | None = None,
    force: bool = False,
) -> None:
    """Configure structlog for the whole process -- once.

    Entry points (CLI, server, workers) all call this; only the first call takes
    effect, so a library-ish caller cannot silently swap the format or the level
    chosen by the entry point. ``force=True`` reconfigures anyway (for tests);
    note that loggers already used keep the old configuration because of
    ``cache_logger_on_first_use``.

    Output goes to *stream*, by default ``sys.stderr``: stdout is reserved for
    command output (``arrears ... | jq`` must not see log lines). The format is
    chosen for who reads that stream: JSON lines when it is not a terminal
    (log shippers, files, pipes) and ``ConsoleRenderer`` when it is (colours
    unless ``NO_COLOR`` is set). Pass ``json`` to override the detection.

    Every chain ends with :func:`redact_personal_data` right before the renderer,
    after the exception/stack formatters, so nothing rendered bypasses it.
    """
    global _state
    with _state_lock:
        if _state == _STATE_EXPLICIT and not force:
            return
        _apply(level, json, stream)
        _state = _STATE_EXPLICIT


def reset_logging() -> None:
    """Undo :func:`configure_logging` (structlog defaults, flag cleared); for tests."""
    global _state
    with _state_lock:
        structlog.reset_defaults()
        _state = _STATE_UNCONFIGURED


def get_logger(name: str | None = None) -> FilteringBoundLogger:
    """Return a structlog logger, bound to ``logger_name=name`` when a name is given.

    If nothing has configured logging yet, the default configuration (with
    redaction) is applied first: structlog's own defaults would print personal
    data verbatim. That default does not count as the "once" -- a later
    explicit :func:`configure_logging` still takes effect.
    """
    global _state
    if _state == _STATE_UNCONFIGURED:
        with _state_lock:
            if _state == _STATE_UNCONFIGURED:
                _apply("INFO", None, None)
                _state = _STATE_DEFAULT
    # ``logger_name`` rather than ``logger``: the latter collides with the
    # ``logger`` parameter of ``structlog.wrap_logger``.
    initial: dict[str, str] = {} if name is None else {"logger_name": name}
    logger: FilteringBoundLogger = structlog.get_logger(**initial)
    return logger
