"""MessagePack transcoder for the event store.

Why msgpack rather than the library's default ``JSONTranscoder``:

* **Compact** -- binary framing, no quoting or escaping, integers take as few
  bytes as their value needs and raw bytes stay raw (JSON would base64 them).
* **Fast** -- encoding and decoding are done in C.  Decoding matters most:
  it runs for every stored event on every aggregate replay.
* **Deterministic** -- the same value always produces the same bytes.  The
  tamper-evident hash chain covers the *stored bytes* of each event, so an
  encoding that could vary (set iteration order, float formatting, optional
  whitespace, key escaping) would make honest re-encodings look like tampering.

Types outside msgpack's native model are carried as msgpack ``ExtType``
values.  Every built-in type has a fixed code, and registered custom
``Transcoding`` objects share one generic code:

====  ===================  ======================================================
Code  Python type          Payload
====  ===================  ======================================================
1     ``uuid.UUID``        the 16 raw bytes (``UUID.bytes``)
2     ``datetime``         ``>qi``: int64 microseconds since the Unix epoch (UTC)
                           then int32 UTC offset in seconds; must be tz-aware
3     ``date``             ``>I``: uint32 proleptic Gregorian ordinal
4     ``Decimal``          ASCII ``str(value)`` (keeps the exponent: ``1200.00``)
5     ``tuple``            msgpack array of the items (nested values recurse)
6     ``frozenset``        msgpack array of the items, sorted by encoded bytes
7     registered custom    msgpack array ``[name, encoded_data]``
====  ===================  ======================================================

**These codes are part of the stored data format: never change or reuse a
code once released.**  A new built-in type takes the next unused code.

Native msgpack types: ``None``, ``bool``, ``int`` (from -2**63 to 2**64-1),
``float``, ``str``, ``bytes``, ``list`` and ``dict``.  Types are matched
*exactly*: a subclass of a native type (an ``IntEnum``, a ``str`` enum, an
``OrderedDict``, a ``NamedTuple``...) is rejected unless a ``Transcoding`` is
registered for that exact class, so nothing silently decodes as a different
type.  (``bytearray`` and ``memoryview`` are packed natively by msgpack and
decode as ``bytes``.)

Decoded datetimes carry a fixed-offset ``datetime.timezone`` (``timezone.utc``
for offset zero): the instant and the offset round-trip exactly, a zone name
(e.g. a ``zoneinfo.ZoneInfo``) does not.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

import msgpack
from eventsourcing.persistence import (
    Transcoder,
    Transcoding,
    TranscodingNotRegisteredError,
)

from ledger import errors

__all__ = [
    "EXT_DATE",
    "EXT_DATETIME",
    "EXT_DECIMAL",
    "EXT_FROZENSET",
    "EXT_REGISTERED",
    "EXT_TUPLE",
    "EXT_UUID",
    "MsgpackTranscoder",
]

# ExtType codes.  Stored data depends on these values: never change them.
EXT_UUID: Final = 1
EXT_DATETIME: Final = 2
EXT_DATE: Final = 3
EXT_DECIMAL: Final = 4
EXT_TUPLE: Final = 5
EXT_FROZENSET: Final = 6
EXT_REGISTERED: Final = 7

_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1

_DATETIME_STRUCT: Final = struct.Struct(">qi")
_DATE_STRUCT: Final = struct.Struct(">I")
_EPOCH_UTC: Final = datetime(1970, 1, 1, tzinfo=UTC)

# Types msgpack packs itself (with ``strict_types=True``), so they can never
# reach ``default`` and registering a Transcoding for them would be ignored.
_NATIVE_TYPES: Final[frozenset[type]] = frozenset(
    {type(None), bool, int, float, str, bytes, bytearray, memoryview, list, dict}
)


def _array_header(length: int) -> bytes:
    """Return the msgpack array header for ``length`` items."""
    if length < 16:
        return bytes((0x90 | length,))
    if length < 0x10000:
        return b"\xdc" + length.to_bytes(2, "big")
    return b"\xdd" + length.to_bytes(4, "big")


class MsgpackTranscoder(Transcoder):
    """Encodes event state as deterministic msgpack bytes (see module docs).

    The same value always encodes to the same bytes.  Dicts are encoded in
    insertion order, which is part of the value as far as the bytes are
    concerned: ``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1}`` are equal but
    encode differently.  Domain events are built by code, so their key order
    is stable.  Frozensets are sorted by their items' encoded bytes, so their
    encoding does not depend on hash seeds.

    Instances are safe to share between threads: every call packs with its
    own ``msgpack`` packer, which also makes the nested packing done for
    tuples, frozensets and custom types re-entrant.
    """

    def __init__(self) -> None:
        self.types: dict[type, Transcoding] = {}
        self.names: dict[str, Transcoding] = {}
        self._encoders: dict[type, Callable[[Any], msgpack.ExtType]] = {
            UUID: self._encode_uuid,
            datetime: self._encode_datetime,
            date: self._encode_date,
            Decimal: self._encode_decimal,
            tuple: self._encode_tuple,
            frozenset: self._encode_frozenset,
        }
        self._builtin_types: frozenset[type] = frozenset(self._encoders)
        self._decoders: dict[int, Callable[[bytes], Any]] = {
            EXT_UUID: self._decode_uuid,
            EXT_DATETIME: self._decode_datetime,
            EXT_DATE: self._decode_date,
            EXT_DECIMAL: self._decode_decimal,
            EXT_TUPLE: self._decode_tuple,
            EXT_FROZENSET: self._decode_frozenset,
            EXT_REGISTERED: self._decode_registered,
        }
        # UTC offset (seconds) -> 1970-01-01T00:00 wall-clock in that offset.
        self._epochs: dict[int, datetime] = {0: _EPOCH_UTC}
        # Keyword arguments are bound once; each call still gets its own packer
        # (a shared msgpack.Packer is neither re-entrant nor thread-safe).
        self._packb: Callable[[Any], bytes] = functools.partial(
            msgpack.packb,
            default=self._default,
            use_bin_type=True,
            datetime=False,
            strict_types=True,
        )
        self._unpackb: Callable[[bytes], Any] = functools.partial(
            msgpack.unpackb,
            ext_hook=self._ext_hook,
            raw=False,
            strict_map_key=False,
        )

    def register(self, transcoding: Transcoding) -> None:
        """Register a custom ``Transcoding`` for its exact ``type``.

        The value returned by ``transcoding.encode`` may contain any value
        this transcoder supports, including other registered types.

        Raises ``ValueError`` if the type is handled natively or by a built-in
        ext code, or if the name is already registered for a different type
        (stored data would then decode as the wrong type).
        """
        cls = transcoding.type
        name = transcoding.name
        if cls in _NATIVE_TYPES or cls in self._builtin_types:
            msg = (
                f"Cannot register transcoding {name!r} for {cls.__qualname__}: "
                "that type is built into MsgpackTranscoder"
            )
            raise ValueError(msg)
        existing = self.names.get(name)
        if existing is not None and existing.type is not cls:
            msg = (
                f"Transcoding name {name!r} is already registered for "
                f"{_type_name(existing.type)}, cannot reuse it for {_type_name(cls)}"
            )
            raise ValueError(msg)
        self.types[cls] = transcoding
        self.names[name] = transcoding
        self._encoders[cls] = functools.partial(self._encode_registered, transcoding)

    def encode(self, obj: Any) -> bytes:
        """Encode ``obj`` as msgpack bytes."""
        return self._packb(obj)

    def decode(self, data: bytes) -> Any:
        """Decode msgpack bytes previously produced by :meth:`encode`.

        Bytes that are not what ``encode`` wrote (altered or damaged in the store) are
        ``StoredEventUnreadable``: one clear error for every reader, not a msgpack one.
        """
        try:
            return self._unpackb(data)
        except (ValueError, TypeError, msgpack.exceptions.UnpackException) as e:
            raise errors.StoredEventUnreadable(
                "a stored event cannot be read: its bytes were altered or damaged "
                f"({type(e).__name__}: {str(e)[:120]}); verification shows which",
            ) from e

    # -- msgpack hooks -------------------------------------------------------

    def _default(self, obj: Any) -> msgpack.ExtType:
        encoder = self._encoders.get(type(obj))
        if encoder is not None:
            return encoder(obj)
        return self._unsupported(obj)

    def _ext_hook(self, code: int, data: bytes) -> Any:
        decoder = self._decoders.get(code)
        if decoder is None:
            msg = f"Cannot decode msgpack ExtType with unknown code {code} ({len(data)} bytes)"
            raise ValueError(msg)
        return decoder(data)

    def _unsupported(self, obj: Any) -> msgpack.ExtType:
        cls = type(obj)
        if cls is int:
            msg = (
                f"Cannot encode int {obj}: outside msgpack's 64-bit integer range "
                f"[{_INT_MIN}, {_INT_MAX}]"
            )
            raise OverflowError(msg)
        msg = f"Cannot encode object of type {cls.__qualname__!r} ({_type_name(cls)})"
        base = next((b for b in cls.__mro__[1:] if b in _NATIVE_TYPES or b in self._encoders), None)
        if base is not None:
            msg += (
                f": it is a subclass of {base.__qualname__!r}, and types are matched "
                "exactly so that it does not decode as the base type; register a "
                "Transcoding for it"
            )
        else:
            msg += ": register a Transcoding for it"
        raise TranscodingNotRegisteredError(msg)

    # -- built-in encoders ---------------------------------------------------

    @staticmethod
    def _encode_uuid(obj: UUID) -> msgpack.ExtType:
        return msgpack.ExtType(EXT_UUID, obj.bytes)

    @staticmethod
    def _encode_datetime(obj: datetime) -> msgpack.ExtType:
        offset = obj.utcoffset()
        if offset is None:
            msg = (
                f"Cannot encode naive datetime {obj.isoformat()}: naive datetimes are "
                "not allowed, attach a tzinfo (e.g. datetime.timezone.utc)"
            )
            raise TypeError(msg)
        if offset.microseconds:
            msg = f"Cannot encode datetime {obj.isoformat()}: UTC offset has sub-second part"
            raise ValueError(msg)
        delta = obj - _EPOCH_UTC
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        offset_seconds = offset.days * 86_400 + offset.seconds
        return msgpack.ExtType(EXT_DATETIME, _DATETIME_STRUCT.pack(micros, offset_seconds))

    @staticmethod
    def _encode_date(obj: date) -> msgpack.ExtType:
        return msgpack.ExtType(EXT_DATE, _DATE_STRUCT.pack(obj.toordinal()))

    @staticmethod
    def _encode_decimal(obj: Decimal) -> msgpack.ExtType:
        return msgpack.ExtType(EXT_DECIMAL, str(obj).encode("ascii"))

    def _encode_tuple(self, obj: tuple[Any, ...]) -> msgpack.ExtType:
        return msgpack.ExtType(EXT_TUPLE, self._packb(list(obj)))

    def _encode_frozenset(self, obj: frozenset[Any]) -> msgpack.ExtType:
        # Sorting the encoded items makes the bytes independent of hash seeds;
        # header + items is exactly the msgpack encoding of the sorted list.
        items = sorted(map(self._packb, obj))
        return msgpack.ExtType(EXT_FROZENSET, _array_header(len(items)) + b"".join(items))

    def _encode_registered(self, transcoding: Transcoding, obj: Any) -> msgpack.ExtType:
        payload = self._packb([transcoding.name, transcoding.encode(obj)])
        return msgpack.ExtType(EXT_REGISTERED, payload)

    # -- built-in decoders ---------------------------------------------------

    @staticmethod
    def _decode_uuid(data: bytes) -> UUID:
        return UUID(bytes=data)

    def _decode_datetime(self, data: bytes) -> datetime:
        micros, offset_seconds = _DATETIME_STRUCT.unpack(data)
        epoch = self._epochs.get(offset_seconds)
        if epoch is None:
            tz = timezone(timedelta(seconds=offset_seconds))
            epoch = self._epochs.setdefault(offset_seconds, datetime(1970, 1, 1, tzinfo=tz))
        # Aware + timedelta is wall-clock arithmetic that keeps the tzinfo.
        return epoch + timedelta(seconds=offset_seconds, microseconds=micros)

    @staticmethod
    def _decode_date(data: bytes) -> date:
        (ordinal,) = _DATE_STRUCT.unpack(data)
        return date.fromordinal(ordinal)

    @staticmethod
    def _decode_decimal(data: bytes) -> Decimal:
        return Decimal(data.decode("ascii"))

    def _decode_tuple(self, data: bytes) -> tuple[Any, ...]:
        return tuple(self._unpackb(data))

    def _decode_frozenset(self, data: bytes) -> frozenset[Any]:
        return frozenset(self._unpackb(data))

    def _decode_registered(self, data: bytes) -> Any:
        name, encoded = self._unpackb(data)
        transcoding = self.names.get(name)
        if transcoding is None:
            msg = (
                f"Cannot decode registered type named {name!r}: "
                "no Transcoding with that name is registered"
            )
            raise ValueError(msg)
        return transcoding.decode(encoded)


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
