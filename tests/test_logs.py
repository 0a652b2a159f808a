"""Tests for ledger.logs: one-time structlog configuration and personal-data redaction.

The key tests render real lines through the configured processor chain into an
``io.StringIO`` and assert on the text, because the promise is about what reaches
the log line -- not about what some intermediate processor returned.
"""

from __future__ import annotations

import contextlib
import io
import json
import string
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # `.venv/bin/pytest` does not put the project root on sys.path
    sys.path.insert(0, str(_ROOT))

from ledger import logs  # noqa: E402
from ledger.logs import (  # noqa: E402
    REDACTED,
    REDACTED_EMAIL,
    REDACTED_PHONE,
    PersonalValueRegistry,
    clear_personal_values,
    configure_logging,
    forget_personal_values,
    get_logger,
    personal_values,
    redact_personal_data,
    register_personal_values,
    reset_logging,
    scrub_text,
)

NAME = "Jane Doe"
PHONE = "+44 7911 123456"
EMAIL = "jane.doe@example.com"
ADDRESS = "221B Baker Street, London NW1 6XE"
PII = (NAME, PHONE, EMAIL, ADDRESS)

SAFE_VALUES = (
    "123e4567-e89b-12d3-a456-426614174000",
    "01234567-0000-4000-8000-000000000000",
    "2026-11-30T12:34:56.789012Z",
    "2026-11-30T12:34:56+00:00",
    "1200.00",
    "1,234,567.89",
    "ACC-000123",
    "2026-11-30",
    "30.11.2026",
)


class TtyStringIO(io.StringIO):
    """A StringIO that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    reset_logging()
    clear_personal_values()
    structlog.contextvars.clear_contextvars()
    yield
    reset_logging()
    clear_personal_values()
    structlog.contextvars.clear_contextvars()


def render(emit: Callable[[Any], None], *, json_lines: bool = True) -> str:
    """Configure the real chain into a fresh buffer, run *emit(logger)*, return the text."""
    stream = io.StringIO()
    configure_logging(json=json_lines, stream=stream, force=True, level="DEBUG")
    emit(get_logger("tests"))
    return stream.getvalue()


def assert_no_pii(output: str, *values: str) -> None:
    """Check the raw text and, for JSON lines, the decoded text (escapes undone)."""
    texts = [output]
    for line in output.splitlines():
        with contextlib.suppress(ValueError):  # console lines are not JSON
            texts.append(json.dumps(json.loads(line), ensure_ascii=False))
    for text in texts:
        lowered = text.lower()
        for value in values:
            assert value.lower() not in lowered, f"{value!r} leaked into {text!r}"


# --------------------------------------------------------------------------
# Personal data never reaches the rendered line
# --------------------------------------------------------------------------


@pytest.mark.parametrize("json_lines", [True, False], ids=["json", "console"])
def test_keyword_arguments_are_redacted(json_lines: bool) -> None:
    """Name, phone, email and address passed as keywords never reach the output."""
    register_personal_values(NAME)
    out = render(
        lambda log: log.info(
            "debtor contacted",
            name=NAME,
            debtor_phone=PHONE,
            email=EMAIL,
            postal_address=ADDRESS,
            debtor_id="123e4567-e89b-12d3-a456-426614174000",
        ),
        json_lines=json_lines,
    )
    assert_no_pii(out, *PII)
    assert REDACTED in out
    assert "123e4567-e89b-12d3-a456-426614174000" in out
    assert "debtor contacted" in out


@pytest.mark.parametrize("json_lines", [True, False], ids=["json", "console"])
def test_nested_structures_are_redacted(json_lines: bool) -> None:
    """Personal data inside nested dicts, lists and tuples never reaches the output."""
    register_personal_values(NAME, ADDRESS)
    payload = {
        "contact": {"phones": [PHONE, "07911 654321"], "notes": [f"call {PHONE}", {"x": EMAIL}]},
        "rows": [("ACC-000123", NAME), {"Debtor Name": NAME, "addr": ADDRESS}],
        "free_text": f"{NAME} <{EMAIL}> {PHONE}",
    }
    out = render(lambda log: log.warning("import row", payload=payload), json_lines=json_lines)
    assert_no_pii(out, *PII, "07911 654321")
    assert "ACC-000123" in out


@pytest.mark.parametrize("json_lines", [True, False], ids=["json", "console"])
def test_event_message_is_scrubbed(json_lines: bool) -> None:
    """Personal data interpolated into the event message itself is scrubbed."""
    register_personal_values(NAME)
    out = render(
        lambda log: log.info(f"Called {NAME} on {PHONE}, emailed {EMAIL} about ACC-000123"),
        json_lines=json_lines,
    )
    assert_no_pii(out, *PII)
    assert f"Called {REDACTED} on {REDACTED_PHONE}, emailed {REDACTED_EMAIL}" in out
    assert "ACC-000123" in out


@pytest.mark.parametrize("json_lines", [True, False], ids=["json", "console"])
def test_exception_text_is_scrubbed(json_lines: bool) -> None:
    """An exception message logged with log.exception has its personal data scrubbed."""
    register_personal_values(NAME)

    def emit(log: Any) -> None:
        try:
            raise ValueError(f"cannot reach {NAME} at {PHONE} or {EMAIL}")
        except ValueError:
            log.exception("delivery failed", account="ACC-000123")

    out = render(emit, json_lines=json_lines)
    assert_no_pii(out, *PII)
    assert "Traceback" in out
    assert "ValueError" in out
    assert "delivery failed" in out


def test_registered_values_match_case_insensitively() -> None:
    """A registered name is redacted whatever its case, and as a substring."""
    register_personal_values("Jane Doe", ADDRESS)
    out = render(
        lambda log: log.info(
            "seen", a="JANE DOE", b="jane doe paid", c="Letter to 221b baker street, london nw1 6xe"
        )
    )
    assert_no_pii(out, "jane doe", ADDRESS)


def test_unregistered_name_under_personal_key_is_redacted() -> None:
    """A name under a personal key is redacted even if it was never registered."""
    out = render(lambda log: log.info("x", first_name="Zebedee", debtor="Quentin Blake"))
    assert_no_pii(out, "Zebedee", "Quentin Blake")


def test_contextvars_and_bound_values_are_redacted() -> None:
    """Values bound via contextvars or bind() go through the same redaction."""
    structlog.contextvars.bind_contextvars(email=EMAIL, request_note=f"from {PHONE}")
    out = render(lambda log: log.bind(phone=PHONE).info("bound"))
    assert_no_pii(out, EMAIL, PHONE)


def test_objects_are_redacted_by_field_name() -> None:
    """Dataclasses and named tuples are redacted by field name, not leaked via repr()."""

    @dataclass
    class Debtor:
        debtor_id: str
        name: str
        phone: str

    class Contact(NamedTuple):
        email: str
        reference: str

    out = render(
        lambda log: log.info(
            "objects",
            debtor=Debtor("D-1", "Zebedee Quux", "555-123-4567"),
            contact=Contact("z@example.org", "ACC-000123"),
            error=RuntimeError(f"bounce from z@example.org for {PHONE}"),
        )
    )
    assert_no_pii(out, "Zebedee Quux", "555-123-4567", "z@example.org", PHONE)
    assert "D-1" in out
    assert "ACC-000123" in out


def test_logger_before_configure_is_still_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    """A logger obtained before configure_logging() still redacts, and writes to stderr."""
    get_logger().info("early", email=EMAIL, note=f"ring {PHONE}")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "early" in captured.err
    assert_no_pii(captured.err, EMAIL, PHONE)


# --------------------------------------------------------------------------
# Property-based: generated emails and phones never survive
# --------------------------------------------------------------------------

_SAFE_TEXT = st.text(max_size=30)
_RESERVED_KEYS = {"event", "level", "timestamp", "logger", "exc_info", "exception", "stack_info"}
_KEYS = st.text(
    alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=20
).filter(lambda k: k not in _RESERVED_KEYS)


# "C" is a country code, "#" a random digit.
_PHONE_FORMATS = (
    "+C#########",  # E.164
    "+C #### ######",
    "+C-###-###-####",
    "+C (#)## #### ####",
    "00C ## #### ####",
    "(###) ###-####",
    "(###)###-####",
    "###-###-####",
    "###.###.####",
    "### ### ####",
    "0#### ######",
    "0##########",
    "0# ## ## ## ##",
    "0#.##.##.##.##",
    "0##-###-####",
)


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    """Phone numbers in E.164 and common national formats."""
    template = draw(st.sampled_from(_PHONE_FORMATS))
    template = template.replace("C", draw(st.sampled_from(["1", "33", "44", "49", "353", "61"])))
    digits = draw(st.lists(st.sampled_from(string.digits), min_size=16, max_size=16))
    filled = iter(digits)
    return "".join(next(filled) if ch == "#" else ch for ch in template)


def _embedded(value: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda pre, v, post: f"{pre} {v} {post}", _SAFE_TEXT, value, _SAFE_TEXT)


@settings(max_examples=150, deadline=None)
@given(
    email=st.emails(),
    phone=phone_numbers(),
    email_key=_KEYS,
    phone_key=_KEYS,
    email_text=st.data(),
)
def test_generated_emails_and_phones_never_reach_output(
    email: str, phone: str, email_key: str, phone_key: str, email_text: st.DataObject
) -> None:
    """Generated emails and phones in many formats, embedded in random text under random
    keys (and in the message), never appear in the rendered line."""
    reset_logging()
    clear_personal_values()
    email_line = email_text.draw(_embedded(st.just(email)))
    phone_line = email_text.draw(_embedded(st.just(phone)))
    values = {email_key: email_line}
    values[phone_key] = phone_line  # same key twice: the phone wins, still checked below
    out = render(lambda log: log.info(f"note: {phone_line} / {email_line}", **values))
    assert_no_pii(out, email, phone)


@settings(max_examples=100, deadline=None)
@given(
    ident=st.uuids(),
    when=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))])),
    day=st.dates(),
    amount=st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False),
    ref=st.integers(min_value=0, max_value=999_999),
)
def test_generated_non_personal_values_survive(
    ident: uuid.UUID, when: datetime, day: date, amount: Decimal, ref: int
) -> None:
    """UUIDs, ISO timestamps, dates, amounts and account references are never redacted."""
    tokens = [str(ident), when.isoformat(), day.isoformat(), f"{amount:.2f}", f"ACC-{ref:06d}"]
    text = " ".join(tokens)
    assert scrub_text(text) == text


# --------------------------------------------------------------------------
# Non-personal data survives
# --------------------------------------------------------------------------


def test_non_personal_values_survive() -> None:
    """UUIDs, ISO timestamps, amounts, references and dates are not redacted."""
    out = render(
        lambda log: log.info(
            "payment " + " ".join(SAFE_VALUES),
            ids=list(SAFE_VALUES),
            amount="1200.00",
            account_ref="ACC-000123",
            due="2026-11-30",
            debtor_id=uuid.UUID("123e4567-e89b-12d3-a456-426614174000"),
            amount_decimal=Decimal("1200.00"),
            logger_name="ledger.payments",
            has_phone=True,
        )
    )
    record = json.loads(out)
    assert record["event"] == "payment " + " ".join(SAFE_VALUES)
    assert record["ids"] == list(SAFE_VALUES)
    assert record["amount"] == "1200.00"
    assert record["account_ref"] == "ACC-000123"
    assert record["due"] == "2026-11-30"
    assert record["debtor_id"] == "123e4567-e89b-12d3-a456-426614174000"
    assert record["amount_decimal"] == "1200.00"
    assert record["logger_name"] == "ledger.payments"
    assert record["has_phone"] is True
    assert REDACTED not in out


@pytest.mark.parametrize(
    "key",
    ["name", "Name", "debtorName", "debtor_phone", "EMAIL", "phones", "mobile", "addressLine1",
     "postcode", "zip", "date_of_birth", "dob", "national_id", "guarantor_email_address",
     "contactemail"],
)  # fmt: skip
def test_personal_keys_are_redacted(key: str) -> None:
    """Values under personal-data keys are replaced with the placeholder, any case or prefix."""
    result = redact_personal_data(None, "info", {"event": "e", key: "some value"})
    assert result[key] == REDACTED


@pytest.mark.parametrize(
    "key",
    ["logger_name", "account_ref", "amount", "phone_count", "event_name", "filename", "city_tax"],
)
def test_technical_keys_are_kept(key: str) -> None:
    """Technical keys that merely resemble personal fields keep their values."""
    result = redact_personal_data(None, "info", {"event": "e", key: "some value"})
    assert result[key] == "some value"


def test_processor_with_capture_logs() -> None:
    """The processor works standalone in a chain (structlog.testing.capture_logs)."""
    register_personal_values(NAME)
    with structlog.testing.capture_logs(processors=[redact_personal_data]) as captured:
        structlog.get_logger().info(f"hi {NAME}", debtor={"id": "D-1", "phone": PHONE})
    assert captured == [
        {"event": f"hi {REDACTED}", "debtor": {"id": "D-1", "phone": REDACTED}, "log_level": "info"}
    ]


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------


def test_registry_is_bounded_lru() -> None:
    """The registry keeps at most max_size values, evicting the least recently registered."""
    registry = PersonalValueRegistry(max_size=3)
    registry.register("alpha", "bravo", "charlie")
    registry.register("alpha")  # refresh: bravo is now the oldest
    registry.register("delta")
    assert len(registry) == 3
    assert "bravo" not in registry
    assert all(value in registry for value in ("alpha", "charlie", "delta"))
    assert registry.find_spans("x bravo ALPHA") == [(8, 13)]


def test_short_values_are_ignored() -> None:
    """Values shorter than three characters are not registered (they would eat words)."""
    registry = PersonalValueRegistry()
    registry.register("Al", " x ", "Bo")
    assert len(registry) == 0


def test_longest_registered_value_wins() -> None:
    """Overlapping registered values redact the longest match as one placeholder."""
    register_personal_values("Jane", "Jane Doe")
    assert scrub_text("Dear Jane Doe,") == f"Dear {REDACTED},"


def test_forget_and_context_manager() -> None:
    """personal_values() only forgets what it added; forget_personal_values() removes values."""
    register_personal_values("Zebedee")
    with personal_values("Zebedee", "Quentin"):
        assert scrub_text("Zebedee Quentin") == f"{REDACTED} {REDACTED}"
    assert scrub_text("Zebedee Quentin") == f"{REDACTED} Quentin"
    forget_personal_values("zebedee")
    assert scrub_text("Zebedee") == "Zebedee"


# --------------------------------------------------------------------------
# Output format and configuration
# --------------------------------------------------------------------------


def test_json_lines_when_stream_is_not_a_tty() -> None:
    """With a non-TTY stream and json=None every line is JSON with event, level, timestamp."""
    stream = io.StringIO()
    configure_logging(stream=stream)
    log = get_logger("ledger.test")
    log.info("first", n=1)
    log.warning("second")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    for line, (event, level) in zip(lines, [("first", "info"), ("second", "warning")], strict=True):
        record = json.loads(line)
        assert record["event"] == event
        assert record["level"] == level
        assert record["logger_name"] == "ledger.test"
        stamp = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
        assert stamp.utcoffset() == timedelta(0)


def test_console_output_when_stream_is_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a TTY stream and json=None the output is the human-readable console format."""
    monkeypatch.setenv("NO_COLOR", "1")
    stream = TtyStringIO()
    configure_logging(stream=stream)
    get_logger().info("hello console", account="ACC-000123")
    line = stream.getvalue()
    with pytest.raises(ValueError):
        json.loads(line)
    assert "hello console" in line
    assert "account=ACC-000123" in line
    assert "[info" in line
    assert "\x1b[" not in line


def test_console_output_when_json_false() -> None:
    """json=False forces the console format even when the stream is not a TTY."""
    stream = io.StringIO()
    configure_logging(json=False, stream=stream)
    get_logger().info("forced console", email=EMAIL)
    line = stream.getvalue()
    with pytest.raises(ValueError):
        json.loads(line)
    assert "forced console" in line
    assert f"email={REDACTED}" in line
    assert "\x1b[" not in line  # no colours on a non-terminal


def test_default_stream_is_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """By default logs go to stderr so stdout stays clean for command output."""
    configure_logging()
    get_logger().info("to stderr")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert json.loads(captured.err)["event"] == "to stderr"


def test_configure_is_idempotent() -> None:
    """A second configure_logging() is a no-op; only force=True reconfigures."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    processors = structlog.get_config()["processors"]
    configure_logging(stream=second, json=False, level="ERROR")
    assert structlog.get_config()["processors"] is processors
    assert [p for p in processors if p is redact_personal_data] == [redact_personal_data]
    get_logger().info("once")
    assert len(first.getvalue().splitlines()) == 1
    assert second.getvalue() == ""

    configure_logging(stream=second, force=True)
    get_logger().info("after force")
    assert json.loads(second.getvalue())["event"] == "after force"


def test_explicit_configure_overrides_lazy_default() -> None:
    """get_logger() before configure applies a safe default that configure_logging() replaces."""
    get_logger()
    stream = io.StringIO()
    configure_logging(stream=stream)
    get_logger().info("explicit wins")
    assert json.loads(stream.getvalue())["event"] == "explicit wins"


def test_level_filtering_and_validation() -> None:
    """Events below the configured level are dropped; an unknown level is rejected."""
    stream = io.StringIO()
    configure_logging(stream=stream, level="warning")
    log = get_logger()
    log.info("dropped")
    log.warning("kept")
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["kept"]
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(level="LOUD", force=True)


def test_unknown_level_is_a_ledger_error_listing_the_valid_levels() -> None:
    """An unknown level (``ARREARS_LOG_LEVEL=verbose``) is a one-line LedgerError for the
    entry points, still a ValueError, and names every valid level."""
    from ledger import errors

    assert logs.check_log_level(" warning ") == "WARNING"
    assert logs.check_log_level("warn") == "WARNING"
    with pytest.raises(logs.InvalidLogLevel) as raised:
        logs.check_log_level("verbose")
    error = raised.value
    assert isinstance(error, errors.LedgerError) and isinstance(error, ValueError)
    assert error.code == "invalid_input"
    assert error.message == (
        "unknown log level 'verbose'; "
        "expected one of CRITICAL, DEBUG, ERROR, FATAL, INFO, WARN, WARNING"
    )
    with pytest.raises(logs.InvalidLogLevel):
        configure_logging(level="verbose", force=True)


def test_module_exports() -> None:
    """The public API is what __all__ declares."""
    for name in logs.__all__:
        assert hasattr(logs, name)
