"""`loads`: declares which real model a fixture loads, so that the tests using it can be selected.

tests/conftest.py gives every test the marker of each fixture it uses, directly or through other
fixtures: `-m "not model and not speech"` then leaves out every test that loads one.
"""

from __future__ import annotations

from typing import Callable, TypeVar

__all__ = ["MARKER_ATTRIBUTE", "MODEL", "SPEECH", "loads"]

MODEL = "model"  # the default Gemma GGUF in llama.cpp
SPEECH = "speech"  # a Whisper model (onnxruntime), ctranslate2 or faster-whisper
MARKER_ATTRIBUTE = "lsg_edge_test_marker"

F = TypeVar("F", bound=Callable)


def loads(marker: str) -> Callable[[F], F]:
    """Put under `@pytest.fixture`: the fixture loads a real model of kind `marker` (MODEL or SPEECH)."""
    if marker not in (MODEL, SPEECH):
        raise ValueError(f"unknown model marker {marker!r}")

    def declare(function: F) -> F:
        setattr(function, MARKER_ATTRIBUTE, marker)
        return function

    return declare
