"""JSON Schemas of contract v1, and the validator that enforces them.

Schemas are plain JSON Schema (2020-12, as OpenAPI 3.1 uses) built by the small
helpers below, so the OpenAPI document (``api.openapi``) prints exactly what
``validate`` checks.  Two things no schema can say are checked when a value is
converted (``api.money``): the decimals a currency allows, and the calendar.

Every failure is a 400 with a code saying what kind of failure it was:
``malformed_json``, ``missing_field``, ``unknown_field`` (no mass assignment),
``invalid_type``, ``invalid_amount`` (money), ``invalid_date`` (dates and times),
``invalid_choice`` (not one of an enumeration), ``invalid_value`` (anything else).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from api.errors import ApiError, bad_request

Schema = dict[str, Any]

#: Reusable schemas, printed under ``components/schemas`` and referred to by ``$ref``.
COMPONENTS: dict[str, Schema] = {}

#: Identifiers and names: no control characters (PostgreSQL refuses NUL in text).
NAME_PATTERN = r"^[^\u0000-\u001f\u007f]+$"
#: Free text: line breaks and tabs allowed, NUL never.
TEXT_PATTERN = r"^[^\u0000]*$"
#: A non-negative decimal amount as a string; the currency decides how many decimals.
MONEY_PATTERN = r"^[0-9]{1,18}(\.[0-9]{1,4})?$"
_DATE_RE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
_DATE_TIME_RE = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


# ---------------------------------------------------------------- builders


def ref(name: str) -> Schema:
    if name not in COMPONENTS:
        raise KeyError(f"no component schema {name!r}")
    return {"$ref": f"#/components/schemas/{name}"}


def component(name: str, schema: Schema) -> Schema:
    """Register ``schema`` as a named component; returns its ``$ref``."""
    COMPONENTS[name] = schema
    return ref(name)


def name_string(description: str, *, max_length: int = 200, **extra: Any) -> Schema:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": NAME_PATTERN,
        "description": description,
        **extra,
    }


def text(description: str, *, max_length: int = 4000, **extra: Any) -> Schema:
    return {
        "type": "string",
        "maxLength": max_length,
        "pattern": TEXT_PATTERN,
        "description": description,
        **extra,
    }


def money(description: str) -> Schema:
    return {
        "type": "string",
        "pattern": MONEY_PATTERN,
        "x-money": True,
        "description": description
        + " A decimal string (never a JSON number) with at most the currency's decimals.",
        "examples": ["1200.00"],
    }


def money_out(description: str) -> Schema:
    return {
        "type": "string",
        "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
        "description": description + " (decimal string, the currency's own decimals)",
    }


def day(description: str) -> Schema:
    return {"type": "string", "format": "date", "description": description + " (ISO 8601 date)"}


def moment(description: str) -> Schema:
    return {
        "type": "string",
        "format": "date-time",
        "description": description + " (RFC 3339, converted to UTC)",
    }


def moment_or_day(description: str) -> Schema:
    """A date-time, or a bare date meaning the end of that day (UTC)."""
    return {
        "type": "string",
        "anyOf": [{"format": "date-time"}, {"format": "date"}],
        "x-moment": True,
        "description": description
        + " (RFC 3339 date-time, or an ISO 8601 date meaning the end of that day, UTC)",
    }


def choice(values: Iterable[str], description: str, **extra: Any) -> Schema:
    return {"type": "string", "enum": sorted(values), "description": description, **extra}


def integer(description: str, *, minimum: int | None = None, maximum: int | None = None) -> Schema:
    schema: Schema = {"type": "integer", "description": description}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def boolean(description: str, **extra: Any) -> Schema:
    return {"type": "boolean", "description": description, **extra}


def array(items: Schema, description: str, *, min_items: int = 0, max_items: int = 500) -> Schema:
    schema: Schema = {"type": "array", "items": items, "description": description}
    if min_items:
        schema["minItems"] = min_items
    schema["maxItems"] = max_items
    return schema


def obj(
    properties: Mapping[str, Schema],
    *,
    required: Iterable[str] = (),
    description: str = "",
    closed: bool = True,
) -> Schema:
    """An object; ``closed`` (requests) refuses properties not listed."""
    schema: Schema = {"type": "object", "properties": dict(properties)}
    wanted = [name for name in required]
    missing = [name for name in wanted if name not in properties]
    if missing:
        raise KeyError(f"required properties not defined: {missing}")
    if wanted:
        schema["required"] = wanted
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def nullable(schema: Schema) -> Schema:
    """The same schema, also accepting ``null``."""
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    out = copy.deepcopy(schema)
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    if "anyOf" in out:
        out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out


# --------------------------------------------------------------- validation

_TYPE_CHECKS: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def _kind_code(schema: Schema) -> str | None:
    if schema.get("x-money"):
        return "invalid_amount"
    if schema.get("format") in ("date", "date-time") or schema.get("x-moment"):
        return "invalid_date"
    return None


def _fail(schema: Schema, where: str, default_code: str, message: str) -> ApiError:
    return bad_request(_kind_code(schema) or default_code, message, field=where)


def resolve(schema: Schema) -> Schema:
    target = schema.get("$ref")
    if target is None:
        return schema
    return COMPONENTS[str(target).rsplit("/", 1)[-1]]


def validate(schema: Schema, value: Any, where: str) -> None:
    """Raise a 400 ``ApiError`` naming ``where`` if ``value`` does not match ``schema``."""
    schema = resolve(schema)
    if "anyOf" in schema or "oneOf" in schema:
        _validate_alternatives(schema, value, where)
        return
    kind = schema.get("type")
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        if not any(_TYPE_CHECKS[k](value) for k in kinds):
            expected = " or ".join(kinds)
            raise _fail(schema, where, "invalid_type", f"{where} must be {_article(expected)}")
        if value is None:
            return
    if "enum" in schema and value not in schema["enum"]:
        options = ", ".join(str(v) for v in schema["enum"] if v is not None)
        raise bad_request("invalid_choice", f"{where} must be one of {options}", field=where)
    if isinstance(value, str):
        _validate_string(schema, value, where)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise _fail(schema, where, "invalid_value", f"{where} must be >= {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise _fail(schema, where, "invalid_value", f"{where} must be <= {schema['maximum']}")
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise _fail(
                schema, where, "invalid_value", f"{where} needs at least {schema['minItems']} items"
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise _fail(
                schema, where, "invalid_value", f"{where} takes at most {schema['maxItems']} items"
            )
        if "items" in schema:
            for i, item in enumerate(value):
                validate(schema["items"], item, f"{where}[{i}]")
    elif isinstance(value, dict):
        _validate_object(schema, value, where)


def _validate_alternatives(schema: Schema, value: Any, where: str) -> None:
    """``anyOf`` (at least one) and ``oneOf`` (exactly one), each checked on its own
    beside the rest of the schema, as JSON Schema does."""
    base = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
    validate(base, value, where)
    for keyword in ("anyOf", "oneOf"):
        branches = schema.get(keyword)
        if branches is None:
            continue
        failures: list[ApiError] = []
        for branch in branches:
            try:
                validate(resolve(branch), value, where)
            except ApiError as e:
                failures.append(e)
        passed = len(branches) - len(failures)
        if keyword == "anyOf" and passed == 0:
            first = failures[0]
            raise bad_request(_kind_code(schema) or first.code, first.message, field=where)
        if keyword == "oneOf" and passed != 1:
            message = schema.get("x-one-of", f"{where} must match exactly one alternative")
            raise bad_request(_kind_code(schema) or "invalid_value", message, field=where)


def _validate_string(schema: Schema, value: str, where: str) -> None:
    if len(value) < schema.get("minLength", 0):
        raise _fail(schema, where, "invalid_value", f"{where} must not be empty")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise _fail(
            schema,
            where,
            "invalid_value",
            f"{where} must be at most {schema['maxLength']} characters",
        )
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise _fail(schema, where, "invalid_value", f"{where} is not valid Unicode text")
    pattern = schema.get("pattern")
    if pattern is not None and re.search(pattern, value) is None:
        raise _fail(schema, where, "invalid_value", f"{where} has characters or a form not allowed")
    fmt = schema.get("format")
    if fmt == "date":
        parse_day(value, where)
    elif fmt == "date-time":
        parse_moment(value, where)
    elif fmt == "uuid":
        try:
            UUID(value)
        except ValueError:
            raise _fail(schema, where, "invalid_value", f"{where} is not a UUID") from None


def _validate_object(schema: Schema, value: dict[str, Any], where: str) -> None:
    properties: Mapping[str, Schema] = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            raise bad_request("missing_field", f"{_join(where, name)} is required", field=name)
    if schema.get("additionalProperties") is False:
        unknown = sorted(set(value) - set(properties))
        if unknown:
            raise bad_request(
                "unknown_field",
                f"{where} has unknown field(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(properties)) or 'none'}",
                field=_join(where, unknown[0]),
                unknown=unknown,
            )
    for name, item in value.items():
        if name in properties:
            validate(properties[name], item, _join(where, name))


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where and where not in ("body", "query") else name


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


# ------------------------------------------------------------------ parsing


def parse_json(body: bytes, where: str = "body") -> Any:
    """The request body as JSON; NaN, Infinity and malformed text are 400 ``malformed_json``."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    def once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # Which of two "amount"s did the client mean?  Refused rather than guessed.
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ValueError(f"the key {key!r} appears twice in one object")
            out[key] = value
        return out

    try:
        return json.loads(body, parse_constant=refuse, object_pairs_hook=once_each)
    except (ValueError, RecursionError) as e:
        raise bad_request(
            "malformed_json", f"the request {where} is not valid JSON: {_first_line(e)}"
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def parse_day(text: str, where: str) -> date:
    match = _DATE_RE.match(text)
    try:
        if match is None:
            raise ValueError
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise bad_request(
            "invalid_date", f"{where} must be a date such as 2026-03-02", field=where
        ) from None


def parse_moment(text: str, where: str) -> datetime:
    """An RFC 3339 date-time (with its offset), as UTC."""
    match = _DATE_TIME_RE.match(text)
    try:
        if match is None:
            raise ValueError
        fraction = (match[7] or ".0")[1:7].ljust(6, "0")
        offset = match[8]
        zone: timezone = UTC
        if offset not in ("Z", "z"):
            sign = -1 if offset[0] == "-" else 1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if hours > 23 or minutes > 59:
                raise ValueError
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
        local = datetime(
            int(match[1]),
            int(match[2]),
            int(match[3]),
            int(match[4]),
            int(match[5]),
            int(match[6]),
            int(fraction),
            tzinfo=zone,
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad_request(
            "invalid_date",
            f"{where} must be an RFC 3339 time such as 2026-03-02T14:00:00Z",
            field=where,
        ) from None


def parse_moment_or_day(text: str, where: str) -> datetime:
    """A date-time, or a bare date meaning the last moment of that day (UTC)."""
    if _DATE_RE.match(text):
        day_ = parse_day(text, where)
        return datetime(day_.year, day_.month, day_.day, 23, 59, 59, 999999, tzinfo=UTC)
    return parse_moment(text, where)


def parse_reported(text: str, where: str, now: datetime) -> datetime:
    """When something reported to us happened: a date-time, or a bare date meaning that
    day -- its last moment, or now if the day is today (a date is not "the future")."""
    moment = parse_moment_or_day(text, where)
    if _DATE_RE.match(text) and moment > now and moment.date() == now.date():
        return now
    return moment


def coerce_query(schema: Schema, text: str, where: str) -> Any:
    """A query-string value as the type its schema names (query strings are all text)."""
    kinds = schema.get("type", "string")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    if "integer" in kinds:
        if re.fullmatch(r"-?[0-9]{1,18}", text) is None:
            raise bad_request("invalid_type", f"{where} must be an integer", field=where)
        return int(text)
    if "boolean" in kinds:
        if text not in ("true", "false"):
            raise bad_request("invalid_type", f"{where} must be true or false", field=where)
        return text == "true"
    return text
