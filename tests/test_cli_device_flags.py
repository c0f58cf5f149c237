"""`--device` is the compute device in every command; the microphone is `--mic-device`, and the
old spellings keep working for one release with a warning."""

from __future__ import annotations

import pytest

from lsg_edge.errors import InputError
from lsg_edge.speech.cli import _devices


def test_device_is_the_compute_device() -> None:
    assert _devices("cpu", None, None) == ("cpu", None)
    assert _devices("auto", None, "2") == ("auto", "2")


def test_old_spellings_warn_and_still_work() -> None:
    with pytest.warns(DeprecationWarning, match="--mic-device"):
        assert _devices("USB Audio", None, None) == ("auto", "USB Audio")
    with pytest.warns(DeprecationWarning, match="--compute-device"):
        assert _devices("auto", "cuda", None) == ("cuda", None)


def test_an_unknown_device_beside_a_microphone_is_an_error() -> None:
    with pytest.raises(InputError, match="--device must be one of"):
        _devices("USB Audio", None, "2")
