"""The one way lsg-edge opens an onnxruntime session (Whisper's graphs, an audio-LLM's encoder).

Sessions are created with explicit options: a fixed thread count (the default grabs every core and
fights the audio thread), full graph optimisation, no per-shape memory plans (memory would grow
with every new input shape), onnxruntime's own logging at errors only, and
the execution providers of `lsg_edge.device`, checked after creation — onnxruntime only warns
when a GPU provider fails to start and then runs everything on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .device import check_onnx_providers, onnx_providers
from .errors import ModelError, OptionsError
from .runtimes import import_onnxruntime

__all__ = ["RuntimeOptions", "open_session"]

_LOG_ERRORS_ONLY = 3  # onnxruntime severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal


@dataclass(frozen=True)
class RuntimeOptions:
    """How onnxruntime runs the graphs."""

    n_threads: int = 0  # intra-op threads; 0 = every core up to 4
    # "auto" | "cpu" | "cuda" | "metal": execution providers chosen by lsg_edge.device,
    # an error when the installed onnxruntime lacks the device — never a silent CPU fallback.
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.n_threads < 0:
            raise OptionsError(f"--threads must be positive, got {self.n_threads}")


def open_session(path: Path, options: RuntimeOptions, what: str, if_unloadable: str = ""):
    """An onnxruntime InferenceSession of the graph at `path`.

    `what` names the graph in error messages; `if_unloadable` is advice appended when onnxruntime
    cannot load the file (e.g. how to rebuild it). ModelError for a missing or unloadable file,
    DeviceError when the requested provider is missing or does not start.
    """
    ort = import_onnxruntime()
    providers = onnx_providers(options.device)  # first: a missing device is the cheapest failure to report
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{what} not found: {path}")
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = options.n_threads or max(1, min(4, os.cpu_count() or 1))
    session_options.inter_op_num_threads = 1
    session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session_options.log_severity_level = _LOG_ERRORS_ONLY
    # With memory patterns, onnxruntime plans each distinct set of input shapes as one block and
    # keeps the plan; streaming brings a new shape at almost every step (the audio so far, the
    # tokens so far), and on long audio memory kept creeping up with them (tiny.en, 5 min of
    # speech: peak RSS 789 MiB with, 719 MiB and flat after the first window without, same speed).
    session_options.enable_mem_pattern = False
    try:
        session = ort.InferenceSession(str(path), sess_options=session_options, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types for bad files
        advice = f" ({if_unloadable})" if if_unloadable else ""
        raise ModelError(f"onnxruntime cannot load the {what} {path}{advice}: {e}") from e
    check_onnx_providers(providers, session.get_providers(), what)
    return session
