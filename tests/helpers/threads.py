"""Run one function on several threads at once, for the concurrency tests."""

from __future__ import annotations

import threading
from typing import Any, Callable, Sequence


def run_together(function: Callable[[Any], Any], inputs: Sequence[Any], timeout_s: float = 600) -> list[Any]:
    """`function(x)` for every input, each on its own thread, all started at one barrier; the results
    in input order (an exception in a thread is its result, for the caller's assertion to show)."""
    results: list[Any] = [None] * len(inputs)
    barrier = threading.Barrier(len(inputs))

    def work(k: int) -> None:
        barrier.wait()
        try:
            results[k] = function(inputs[k])
        except BaseException as e:  # noqa: BLE001 - reported by the caller's assertion
            results[k] = e

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout_s)
    return results
