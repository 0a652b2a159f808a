"""The per-stream hash chain.

Each stored event carries ``prev_hash`` (its predecessor's hash in the same
stream, zeros for the first) and ``hash`` = SHA-256 over a canonical,
length-prefixed encoding of exactly the bytes stored.  Hashing the stored
bytes rather than a re-encoding means an auditor's verifier needs no knowledge
of the domain model, and a later upcaster can never invalidate old hashes.
"""

from __future__ import annotations

import hashlib
import struct
from uuid import UUID

GENESIS = bytes(32)
_DOMAIN = b"arrears.event.v1\x00"
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def originator_bytes(originator_id: UUID | str) -> bytes:
    if isinstance(originator_id, UUID):
        return b"u" + originator_id.bytes
    return b"s" + originator_id.encode("utf-8")


def event_hash(
    originator_id: UUID | str, version: int, topic: str, state: bytes, prev_hash: bytes
) -> bytes:
    oid = originator_bytes(originator_id)
    topic_bytes = topic.encode("utf-8")
    h = hashlib.sha256(_DOMAIN)
    h.update(_U32.pack(len(oid)))
    h.update(oid)
    h.update(_U64.pack(version))
    h.update(_U32.pack(len(topic_bytes)))
    h.update(topic_bytes)
    h.update(_U64.pack(len(state)))
    h.update(state)
    h.update(prev_hash)
    return h.digest()
