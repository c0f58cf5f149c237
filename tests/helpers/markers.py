"""`loads`: declares which real model a fixture loads, so that the tests using it can be selected.

tests/conftest.py gives every test the marker of each fixture it uses, directly or through other
fixtures: `-m "not model and not speech"` then leaves out every test that loads one.
"""

from __future__ import annotations

from typing import Callable, TypeVar

__all__ = ["MARKER_ATTRIBUTE", "MODEL", "QWEN", "SPEECH", "loads"]

MODEL = "model"  # the default Gemma GGUF in llama.cpp
SPEECH = "speech"  # a Whisper model (onnxruntime), ctranslate2 or faster-whisper
QWEN = "qwen"  # the 1.5B Qwen GGUF of the `qwen` extra (1.1 GB, several seconds a sentence on a CPU)
MARKER_ATTRIBUTE = "lsg_edge_test_marker"

F = TypeVar("F", bound=Callable)


def loads(marker: str) -> Callable[[F], F]:
    """Put under `@pytest.fixture`: the fixture loads a real model of kind `marker` (MODEL, QWEN or SPEECH)."""
    if marker not in (MODEL, QWEN, SPEECH):
        raise ValueError(f"unknown model marker {marker!r}")

    def declare(function: F) -> F:
        setattr(function, MARKER_ATTRIBUTE, marker)
        return function

    return declare
