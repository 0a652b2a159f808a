"""Server settings: the ``[server]`` table of the TOML config, with safe defaults.

Unknown keys are refused: a typo in a limit must not silently leave the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

MIB = 1 << 20
#: Sanic cannot read headers larger than this.
HEADER_SIZE_CEILING = 16384
#: The contract's ceiling for any page of results.
PAGE_SIZE_CEILING = 500


class ConfigError(ValueError):
    """The ``[server]`` table holds something the server cannot run with."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    #: Largest request body in bytes; larger is 413 ``payload_too_large``.
    max_body_size: int = MIB
    #: Largest request head (request line and headers) in bytes.
    max_header_size: int = 8192
    #: Seconds to receive a whole request, and to produce a response.
    request_timeout: float = 30.0
    response_timeout: float = 60.0
    keep_alive_timeout: float = 5.0
    #: Items per page when the caller gives no ``limit``, and the most it may ask for.
    page_size: int = 100
    max_page_size: int = PAGE_SIZE_CEILING
    #: Threads that run service calls (the library is synchronous).
    threads: int = 32
    #: Seconds a request waits for a concurrent one holding the same Idempotency-Key.
    idempotency_wait: float = 10.0
    #: Run the projections and time processes in the server process.
    worker: bool = True
    #: Seconds between runs of the time processes in that worker.
    worker_tick: float = 60.0

    def __post_init__(self) -> None:
        positive_ints = ("port", "max_body_size", "max_header_size", "page_size", "threads")
        for name in positive_ints:
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise ConfigError(f"[server] {name} must be a positive integer, got {value!r}")
        for name in (
            "request_timeout",
            "response_timeout",
            "keep_alive_timeout",
            "idempotency_wait",
            "worker_tick",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"[server] {name} must be a positive number, got {value!r}")
        if self.port > 65535:
            raise ConfigError(f"[server] port must be at most 65535, got {self.port}")
        if self.max_header_size > HEADER_SIZE_CEILING:
            raise ConfigError(
                f"[server] max_header_size must be at most {HEADER_SIZE_CEILING} bytes"
            )
        if type(self.max_page_size) is not int or not 1 <= self.max_page_size <= PAGE_SIZE_CEILING:
            raise ConfigError(
                f"[server] max_page_size must be between 1 and {PAGE_SIZE_CEILING}, "
                f"got {self.max_page_size!r}"
            )
        if self.page_size > self.max_page_size:
            raise ConfigError("[server] page_size cannot exceed max_page_size")
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError("[server] host must be a host name or address")
        if not isinstance(self.worker, bool):
            raise ConfigError("[server] worker must be true or false")

    @classmethod
    def from_table(cls, table: Mapping[str, Any] | None) -> ServerConfig:
        """Settings from the ``[server]`` table (missing keys keep their defaults)."""
        table = dict(table or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(
                f"[server] has unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**table)

    def with_overrides(self, **changes: Any) -> ServerConfig:
        """A copy with the command line's options (``None`` means: keep the file's)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
