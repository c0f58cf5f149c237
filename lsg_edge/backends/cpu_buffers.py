"""Whether llama.cpp may use its extra CPU buffer types on this machine (AMX, weight repacking).

llama.cpp (`llama_model_params.use_extra_bufts`, on by default) moves quantized weights into
"extra" CPU buffers at load time: on x86 builds with AMX-INT8 compiled in, the AMX buffer first,
then the repacked (row-interleaved) layouts. On some AMX machines — Sapphire-Rapids-class virtual
machines — the AMX matmul kills the process on the first decode, on a worker thread: SIGILL at
`tileloadd` on one, SIGSEGV at `ldtilecfg` on another (both in ggml_backend_amx_mul_mat). No
Python code can catch that. Hence, per machine:

- no AMX kernels in play (the build has no AMX_INT8, or the CPU does not list `amx_tile`): extra
  buffers on, as llama.cpp does everywhere by default; only the repacking is in use there;
- AMX in play: a one-time probe in a child process loads the default model with extra buffers on
  and decodes a few tokens with worker threads. A child killed by a signal means unsafe: the plain
  CPU path (no AMX, no repacking). The verdict is cached in the user cache, keyed by the llama.cpp
  build and the CPU, so only the first run on a machine pays for it (a few seconds);
- `LSG_EDGE_EXTRA_BUFTS=0|1|auto` (and `--extra-bufts off|on|auto`, which wins) forces it.

A probe rather than a rule on the CPU flags alone: the same flags describe bare-metal Sapphire
Rapids, where the AMX kernels work and are fast, and the VMs where they fault.

The decision functions are pure (facts in, `ExtraBuftsDecision` out); `extra_bufts_decision` wires
them to this machine, the installed llama.cpp and the cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping

from ..errors import OptionsError

__all__ = [
    "ENV_VAR",
    "SETTINGS",
    "ExtraBuftsDecision",
    "ProbeResult",
    "requested_setting",
    "amx_in_play",
    "decide",
    "interpret_probe_exit",
    "cpu_flags",
    "extra_bufts_decision",
    "run_probe",
]

ENV_VAR = "LSG_EDGE_EXTRA_BUFTS"
SETTINGS = ("auto", "on", "off")
_ENV_VALUES = {"auto": "auto", "1": "on", "on": "on", "0": "off", "off": "off"}
_PROBE_OK = "lsg-edge extra-bufts probe: ok"
# Loading 240 MB and decoding a few tokens takes seconds; a minute means something else is wrong.
_PROBE_TIMEOUT_S = 180.0
# Bump when the probe changes what it exercises: old verdicts are then ignored.
_PROBE_VERSION = 1


@dataclass(frozen=True)
class ExtraBuftsDecision:
    """Whether llama.cpp gets `use_extra_bufts`, and why (shown by `lsg-edge info`)."""

    enabled: bool
    setting: str  # "auto" | "on" | "off": what was asked
    source: str  # where the answer comes from: "--extra-bufts", "LSG_EDGE_EXTRA_BUFTS", "rule", "probe", "cached probe"
    reason: str  # one line for people


@dataclass(frozen=True)
class ProbeResult:
    """What the child process said. `safe` None: inconclusive (it failed, but not by a signal)."""

    safe: bool | None
    detail: str


def requested_setting(explicit: str | None, environ: Mapping[str, str]) -> tuple[str, str]:
    """(setting, origin): the flag if given, else $LSG_EDGE_EXTRA_BUFTS, else ("auto", "default")."""
    if explicit is not None:
        if explicit not in SETTINGS:
            raise OptionsError(f"--extra-bufts must be one of {', '.join(SETTINGS)}, got {explicit!r}")
        return explicit, "--extra-bufts"
    raw = environ.get(ENV_VAR, "").strip().lower()
    if not raw:
        return "auto", "default"
    if raw not in _ENV_VALUES:
        raise OptionsError(f"{ENV_VAR} must be 0, 1 or auto, got {raw!r}")
    return _ENV_VALUES[raw], ENV_VAR


def amx_in_play(system_info: str, flags: frozenset[str] | None) -> bool:
    """Whether llama.cpp would put weights into its AMX buffer here.

    `system_info` is llama_print_system_info() (it lists "AMX_INT8 = 1" when the kernels are
    compiled in); `flags` the CPU's flags, None where unknown (not Linux): then the build decides.
    """
    if "AMX_INT8 = 1" not in system_info:
        return False
    return flags is None or "amx_tile" in flags


def decide(setting: str, origin: str, *, amx: bool, probe: Callable[[], tuple[ProbeResult, bool]]) -> ExtraBuftsDecision:
    """The decision from the facts. `probe()` returns (result, from_cache) and is called only when
    the answer depends on it (auto with AMX in play)."""
    if setting == "on":
        return ExtraBuftsDecision(True, setting, origin, f"forced on by {origin}")
    if setting == "off":
        return ExtraBuftsDecision(False, setting, origin, f"forced off by {origin}: plain CPU path, no weight repacking")
    if not amx:
        return ExtraBuftsDecision(True, setting, "rule", "no AMX kernels in play here: llama.cpp's weight repacking, its default")
    result, cached = probe()
    source = "cached probe" if cached else "probe"
    if result.safe:
        return ExtraBuftsDecision(True, setting, source, f"AMX probe passed ({result.detail})")
    verdict = "crashed" if result.safe is False else "was inconclusive"
    return ExtraBuftsDecision(
        False, setting, source, f"AMX probe {verdict} ({result.detail}): plain CPU path, no AMX or repacking"
    )


def interpret_probe_exit(returncode: int, stdout: str, stderr: str) -> ProbeResult:
    """A ProbeResult from the child's exit: killed by a signal = unsafe; success = safe; anything
    else (an exception, a missing model) says nothing about AMX = inconclusive."""
    if returncode == 0 and _PROBE_OK in stdout:
        return ProbeResult(True, "decoded with extra buffers on")
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return ProbeResult(False, f"the probe process was killed by {name}")
    last = (stderr.strip().splitlines() or ["no message"])[-1]
    return ProbeResult(None, f"the probe process exited with {returncode}: {last[:200]}")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str] | None:
    """The first processor's flags from /proc/cpuinfo; None where there is no such file."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return None


def _cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def extra_bufts_decision(explicit: str | None, package_version: str, system_info: str) -> ExtraBuftsDecision:
    """The decision for this process: flag / env / rule / (cached) probe. Probes at most once per
    process and build; raises OptionsError for a bad setting."""
    setting, origin = requested_setting(explicit, os.environ)
    flags = cpu_flags()
    facts = {
        "probe_version": _PROBE_VERSION,
        "llama_cpp_python": package_version,
        "system_info": system_info,
        "library": _library_stamp(),
        "cpu_model": _cpu_model(),
        "cpu_flags": " ".join(sorted(flags)) if flags is not None else "unknown",
    }
    return decide(
        setting, origin, amx=amx_in_play(system_info, flags), probe=lambda: _cached_probe(json.dumps(facts, sort_keys=True))
    )


def _library_stamp() -> str:
    """Size and mtime of the installed llama.cpp library: a rebuild with other CMAKE_ARGS keeps the
    package version, not the file."""
    try:
        import llama_cpp

        folder = Path(llama_cpp.__file__).parent / "lib"
        parts = [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(folder.glob("*ggml*"))]
        return " ".join(parts) or "no lib folder"
    except (ImportError, OSError):
        return "unknown"


@functools.cache
def _cached_probe(facts_json: str) -> tuple[ProbeResult, bool]:
    from ..assets import cache_dir

    key = hashlib.blake2b(facts_json.encode(), digest_size=10).hexdigest()
    path = cache_dir() / "probes" / f"extra-bufts-{key}.json"
    try:
        stored = json.loads(path.read_text())
        if stored.get("facts") == json.loads(facts_json) and isinstance(stored.get("safe"), bool):
            return ProbeResult(stored["safe"], stored["detail"]), True
    except (OSError, ValueError, AttributeError):
        pass
    print("lsg-edge: checking once whether llama.cpp's AMX kernels run on this CPU (a few seconds)", file=sys.stderr)
    result = run_probe(_probe_model())
    if result.safe is not None:  # an inconclusive probe is tried again next time
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}")
            partial.write_text(json.dumps({"facts": json.loads(facts_json), **asdict(result)}, indent=1))
            os.replace(partial, path)
        except OSError:
            pass  # a read-only cache: probe again next time
    return result, False


def _probe_model() -> Path | None:
    """The default model: small, and quantized into the types the AMX kernels take (Q4_K, Q6_K)."""
    from ..errors import LsgEdgeError
    from ..manifest import DEFAULT_TEXT_MANIFEST, load_manifest

    try:
        manifest = load_manifest(DEFAULT_TEXT_MANIFEST)
        from ..assets import assemble_packaged_gguf

        return assemble_packaged_gguf(manifest.package_module, manifest.package_file)
    except LsgEdgeError:
        return None


def run_probe(model_path: Path | None, n_threads: int = 2, timeout_s: float = _PROBE_TIMEOUT_S) -> ProbeResult:
    """Load `model_path` with extra buffers on in a child process and decode a few tokens."""
    if model_path is None:
        return ProbeResult(None, "the default model is not available to probe with")
    # `-c` puts the current folder first on sys.path; drop it so that nothing there shadows lsg_edge.
    code = "import sys; del sys.path[0]; from lsg_edge.backends.cpu_buffers import _probe_main; _probe_main(sys.argv[1:])"
    try:
        child = subprocess.run(
            [sys.executable, "-c", code, str(model_path), str(max(2, n_threads))],
            capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return ProbeResult(None, f"the probe process gave no answer within {timeout_s:.0f} s")
    return interpret_probe_exit(child.returncode, child.stdout, child.stderr)


def _probe_main(argv: list[str]) -> None:
    """The child: the real load and decode path with extra buffers on — a prompt batch, then single
    tokens (the two matmul shapes of decoding), on at least two threads (the fault was on a worker)."""
    from .llama import LlamaModel, LlamaOptions

    model_path, threads = Path(argv[0]), int(argv[1])
    options = LlamaOptions(model_path=model_path, n_ctx_tokens=256, n_threads=threads, device="cpu", extra_bufts="on")
    with LlamaModel(options) as model:
        context = model.new_context()
        tokens = model.vocab.tokenize("Die Polizei sucht nach Zeugen des Unfalls auf der Autobahn.", add_bos=True)
        for _ in range(4):
            logits = context.logits_at(tokens, [len(tokens) - 1])
            tokens.append(int(logits[0].argmax()))
    print(_PROBE_OK, flush=True)
