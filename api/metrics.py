"""Prometheus metrics, in the text exposition format (version 0.0.4), written by hand.

Request counts by route template and status, a latency histogram by route,
requests in flight; on each scrape, the ledger's head position (events appended)
and each read model's lag behind it.  Routes are templates (``/v1/accounts/{id}``),
never raw paths, so neither ids nor typos multiply the series.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable

from ledger.readmodels.engine import ProjectionStatus

#: Latency buckets in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Counters and histograms of one server process; safe to update from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.in_flight = 0

    def started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route)
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)
            self.requests[(method, route, status)] += 1
            counts = self.buckets.get(key)
            if counts is None:
                counts = self.buckets[key] = [0] * (len(BUCKETS) + 1)
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            counts[-1] += 1  # +Inf
            self.sums[key] += seconds

    def render(self, head: int | None, projections: Iterable[ProjectionStatus]) -> str:
        lines = [
            "# HELP arrears_http_requests_total HTTP requests answered, by route and status.",
            "# TYPE arrears_http_requests_total counter",
        ]
        with self._lock:
            requests = sorted(self.requests.items())
            buckets = sorted((k, list(v)) for k, v in self.buckets.items())
            sums = dict(self.sums)
            in_flight = self.in_flight
        for (method, route, status), count in requests:
            lines.append(
                f'arrears_http_requests_total{{method="{method}",route="{_label(route)}",'
                f'status="{status}"}} {count}'
            )
        lines += [
            "# HELP arrears_http_request_duration_seconds Time to answer a request.",
            "# TYPE arrears_http_request_duration_seconds histogram",
        ]
        for (method, route), counts in buckets:
            labels = f'method="{method}",route="{_label(route)}"'
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), counts, strict=True):
                lines.append(
                    f'arrears_http_request_duration_seconds_bucket{{{labels},le="{bound}"}} {count}'
                )
            lines.append(
                f"arrears_http_request_duration_seconds_sum{{{labels}}} {sums[(method, route)]:.6f}"
            )
            lines.append(f"arrears_http_request_duration_seconds_count{{{labels}}} {counts[-1]}")
        lines += [
            "# HELP arrears_http_requests_in_flight Requests being answered now.",
            "# TYPE arrears_http_requests_in_flight gauge",
            f"arrears_http_requests_in_flight {in_flight}",
        ]
        if head is not None:
            lines += [
                "# HELP arrears_events_appended_total Events in the ledger (its head position).",
                "# TYPE arrears_events_appended_total counter",
                f"arrears_events_appended_total {head}",
            ]
        statuses = list(projections)
        if statuses:
            lines += [
                "# HELP arrears_projection_lag_events Events a read model has yet to apply.",
                "# TYPE arrears_projection_lag_events gauge",
            ]
            lines += [
                f'arrears_projection_lag_events{{projection="{_label(s.name)}"}} {s.lag}'
                for s in statuses
            ]
            lines += [
                "# HELP arrears_projection_position Last event position a read model applied.",
                "# TYPE arrears_projection_position gauge",
            ]
            lines += [
                f'arrears_projection_position{{projection="{_label(s.name)}"}} {s.position}'
                for s in statuses
            ]
        return "\n".join(lines) + "\n"
