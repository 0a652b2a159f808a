"""A per-process cache of each stream's newest (version, hash).

Rows are immutable, so "version N of stream S has hash H" never goes stale; the
cache is filled only after a commit succeeds.  It lets a write skip reading its
predecessor's hash back from the database — on PostgreSQL that read is a whole
round trip.  A miss simply falls back to the read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable


class HeadCache:
    def __init__(self, maxsize: int = 100_000) -> None:
        self.maxsize = maxsize
        self._heads: OrderedDict[object, tuple[int, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def prev_hash(self, stream: object, version: int) -> bytes | None:
        """The hash of ``version - 1`` if this process knows it."""
        with self._lock:
            head = self._heads.get(stream)
        if head is not None and head[0] == version - 1:
            return head[1]
        return None

    def committed(self, heads: Iterable[tuple[object, int, bytes]]) -> None:
        with self._lock:
            for stream, version, digest in heads:
                current = self._heads.get(stream)
                if current is None or current[0] < version:
                    self._heads[stream] = (version, digest)
                    self._heads.move_to_end(stream)
            while len(self._heads) > self.maxsize:
                self._heads.popitem(last=False)
