"""Run a test body in several real OS processes at once (spawned, so nothing is shared).

``target(worker, barrier, *args)`` runs in each process; the barrier lets them
start the contended part together, and a failing process breaks it so the others
stop waiting instead of hanging until the timeout.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from typing import Any


def _guarded(target: Any, barrier: Any, results: Any, worker: int, *args: Any) -> None:
    try:
        results.put((worker, "ok", target(worker, barrier, *args)))
    except BaseException as e:
        barrier.abort()
        trace = "".join(traceback.format_exception(e)[-6:])
        results.put((worker, "error", f"{type(e).__name__}: {e}\n{trace}"))


def run_processes(target: Any, args: list[tuple[Any, ...]], timeout: float = 120) -> list[Any]:
    """Each process's result, in worker order; any failure fails the test with its traceback."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(args))
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_guarded, args=(target, barrier, results, w, *a))
        for w, a in enumerate(args)
    ]
    for p in procs:
        p.start()
    reports: dict[int, Any] = {}
    errors: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(reports) + len(errors) < len(procs):
            try:
                worker, status, value = results.get(timeout=0.5)
            except queue.Empty:
                if errors and time.monotonic() >= deadline:
                    break
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                assert not dead, f"a worker died without reporting (exit codes {dead})"
                assert time.monotonic() < deadline, "workers did not finish in time"
                continue
            if status == "ok":
                reports[worker] = value
            else:
                errors[worker] = value
                # The first failure aborts the barrier, so the others report a
                # BrokenBarrierError too; wait a little for them so the root cause
                # (the one that is not a broken barrier) is the one shown.
                deadline = min(deadline, time.monotonic() + 10)
        assert not errors, _root_cause_first(errors)
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    return [reports[w] for w in range(len(procs))]


def _root_cause_first(errors: dict[int, str]) -> str:
    """Every failing worker's report, the ones that are not a broken barrier first."""
    ordered = sorted(errors.items(), key=lambda kv: kv[1].startswith("BrokenBarrierError"))
    return "\n".join(f"worker {w}: {text}" for w, text in ordered)
