"""Typed errors raised at the library's boundaries.

The CLI turns every `LsgEdgeError` into a one-line message and a non-zero exit code; anything else
is a bug and is allowed to show its traceback.
"""

from __future__ import annotations

__all__ = ["LsgEdgeError", "ModelError", "ContextOverflow", "InputError", "OptionsError", "DeviceError", "EngineBusy", "InputWarning"]


class LsgEdgeError(Exception):
    """Base class of every error the library raises on purpose."""

    exit_code = 1


class ModelError(LsgEdgeError):
    """A model file or manifest is missing, truncated or unusable."""

    exit_code = 2


class ContextOverflow(ModelError):
    """A request needs more tokens than the model's context holds."""


class InputError(LsgEdgeError):
    """The input stream (text, audio) cannot be used."""

    exit_code = 1


class OptionsError(LsgEdgeError):
    """An option has a value outside its domain."""

    exit_code = 2


class DeviceError(LsgEdgeError):
    """A requested device (GPU, microphone) is not available in this installation."""

    exit_code = 3


class EngineBusy(LsgEdgeError):
    """Every context of an engine is held by an open session: the next stream is refused, not
    slowed down with the others."""

    exit_code = 4


class InputWarning(UserWarning):
    """Input was used only in part (a word too long to translate, an audio file shorter than its
    header says). The CLI shows it as one 'warning:' line on stderr."""
