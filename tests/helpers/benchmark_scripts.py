"""Benchmark scripts (`benchmarks/*.py`) imported by tests that pin their behaviour: they are
scripts, not a package, so they are loaded from their path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(name: str) -> Iterator[ModuleType]:
    """Yield `benchmarks/<name>.py` as a module, registered under a private name while it is in
    use (dataclasses look their module up by name), for a fixture to `yield from`."""
    spec = importlib.util.spec_from_file_location(f"lsg_edge_benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]
