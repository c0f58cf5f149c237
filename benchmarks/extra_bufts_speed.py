"""What llama.cpp's extra CPU buffer types (AMX, weight repacking) are worth on this machine.

Each mode runs in its own process — a SIGILL kills only that one and is reported — on the same
sentences, with the default model and its default (LSG) policy:

  off     use_extra_bufts = False: the plain CPU path, lsg-edge's fallback where AMX faults
  repack  repacking without AMX: extra buffers off (so no weight can land in the AMX buffer), and
          the weights llama.cpp can repack on this CPU (Q4_0, Q4_K, IQ4_NL with rows a multiple of
          8) placed in its CPU_REPACK buffer through `tensor_buft_overrides`; ggml has no switch
          (environment variable) for AMX alone, and an override to the plain CPU buffer type would
          bring the extra types (AMX first) back
  on      extra buffers on as llama.cpp chooses them (the AMX buffer first where compiled in)

Prints load time, wall and process-CPU seconds per sentence (one warm-up sentence first, not
timed) and whether the committed text equals the `off` mode's (other kernels round differently).

    python benchmarks/extra_bufts_speed.py --data DATA --limit 30 --threads 2
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

MODES = ("off", "repack", "on")
# ggml types the CPU_REPACK buffer takes on x86 with AVX2 (repack.cpp of the pinned llama.cpp).
_REPACKABLE_X86 = {"Q4_0", "Q4_K", "IQ4_NL"}


class _Override(ctypes.Structure):
    _fields_ = [("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p)]


def _repack_buft():
    """The CPU device's CPU_REPACK buffer type (ggml_backend_dev_get_extra_bufts, by name)."""
    from llama_cpp._ggml import libggml as lib

    p = ctypes.c_void_p
    lib.ggml_backend_dev_by_type.argtypes, lib.ggml_backend_dev_by_type.restype = [ctypes.c_int], p
    lib.ggml_backend_dev_backend_reg.argtypes, lib.ggml_backend_dev_backend_reg.restype = [p], p
    lib.ggml_backend_reg_get_proc_address.argtypes, lib.ggml_backend_reg_get_proc_address.restype = [p, ctypes.c_char_p], p
    lib.ggml_backend_buft_name.argtypes, lib.ggml_backend_buft_name.restype = [p], ctypes.c_char_p
    dev = lib.ggml_backend_dev_by_type(0)  # GGML_BACKEND_DEVICE_TYPE_CPU
    address = lib.ggml_backend_reg_get_proc_address(lib.ggml_backend_dev_backend_reg(dev), b"ggml_backend_dev_get_extra_bufts")
    get_extra = ctypes.CFUNCTYPE(ctypes.POINTER(p), p)(address)
    bufts = get_extra(dev)
    names = []
    i = 0
    while bufts[i]:
        name = lib.ggml_backend_buft_name(bufts[i]).decode()
        names.append(name)
        if name == "CPU_REPACK":
            return bufts[i], names
        i += 1
    raise SystemExit(f"no CPU_REPACK buffer type in this build (extra buffer types: {names})")


def _install_repack_overrides(model_path: Path) -> list[str]:
    """Make every model load put the repackable weights into CPU_REPACK (bypassing AMX)."""
    import gguf
    import llama_cpp

    from lsg_edge.backends.llama import llama_build

    llama_build()  # ggml's backends registered
    buft, _ = _repack_buft()
    reader = gguf.GGUFReader(str(model_path))
    names = [t.name for t in reader.tensors
             if t.tensor_type.name in _REPACKABLE_X86 and len(t.shape) == 2 and int(t.shape[1]) % 8 == 0
             and not t.name.startswith("token_embd")]  # the input layer stays on the plain CPU buffer
    overrides = (_Override * (len(names) + 1))(*[_Override(f"^{n}$".encode(), buft) for n in names], _Override(None, None))
    _KEEP.append(overrides)
    default_params = llama_cpp.llama_model_default_params

    def with_overrides():
        params = default_params()
        params.tensor_buft_overrides = ctypes.cast(overrides, ctypes.c_void_p).value  # a c_void_p field
        return params

    llama_cpp.llama_model_default_params = with_overrides
    return names


_KEEP: list = []


def run_one(mode: str, data: Path, limit: int, threads: int) -> dict:
    from lsg_edge import TranslationEngine
    from lsg_edge.text.source import split_words

    sources = (data / "wmt15-deen-dev" / "de.txt").read_text(encoding="utf-8").splitlines()[:limit]
    overridden = []
    if mode == "repack":
        from lsg_edge.manifest import DEFAULT_TEXT_MANIFEST, load_manifest
        from lsg_edge.text.engine import resolve_gguf

        overridden = _install_repack_overrides(resolve_gguf(load_manifest(DEFAULT_TEXT_MANIFEST)))
    started = time.perf_counter()
    extra = "on" if mode == "on" else "off"
    with TranslationEngine.load(n_threads=threads, extra_bufts=extra) as engine:
        load_s = time.perf_counter() - started
        session = engine.create_session("de", "en")
        for word in split_words(sources[0]):  # warm-up, not timed
            session.push(word)
        session.finish()
        outputs = []
        started, started_cpu = time.perf_counter(), time.process_time()
        for source in sources:
            commits = []
            for word in split_words(source):
                commits += session.push(word)
            commits += session.finish()
            outputs.append([[c.source_read, c.separator + c.text] for c in commits])
        wall_s = time.perf_counter() - started
        cpu_s = time.process_time() - started_cpu  # less sensitive than wall time to a shared machine
        decision = engine.model.extra_bufts
    return {"load_s": load_s, "wall_s": wall_s, "cpu_s": cpu_s, "outputs": outputs, "overridden": len(overridden),
            "decision": decision.reason}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the shared evaluation data folder (holds wmt15-deen-dev)")
    parser.add_argument("--limit", type=int, default=30, help="first N sentences of wmt15-deen-dev")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.data, args.limit, args.threads)))
        return
    results = {}
    for mode in args.modes.split(","):
        command = [sys.executable, __file__, "--data", str(args.data), "--limit", str(args.limit), "--threads", str(args.threads), "--child", mode]
        child = subprocess.run(command, capture_output=True, text=True, env={**os.environ})
        if child.returncode < 0:
            results[mode] = {"error": f"killed by {signal.Signals(-child.returncode).name}"}
        elif child.returncode:
            results[mode] = {"error": (child.stderr.strip().splitlines() or ["?"])[-1]}
        else:
            results[mode] = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"  done: {mode}", file=sys.stderr)
    print(f"{args.limit} sentences of wmt15-deen-dev De→En, default model and policy, {args.threads} threads, "
          "one process per mode")
    print(f"{'mode':<8} {'load s':>7} {'s/sent':>7} {'× off':>6} {'cpu s/sent':>11} {'cpu × off':>10}  same text as off")
    off = results.get("off", {})
    for mode, r in results.items():
        if "error" in r:
            print(f"{mode:<8} {r['error']}")
            continue
        ratio = r["wall_s"] / off["wall_s"] if "wall_s" in off else float("nan")
        cpu_ratio = r["cpu_s"] / off["cpu_s"] if "cpu_s" in off else float("nan")
        same = r["outputs"] == off.get("outputs")
        note = f" ({r['overridden']} tensors in CPU_REPACK)" if mode == "repack" else ""
        print(f"{mode:<8} {r['load_s']:>7.2f} {r['wall_s'] / args.limit:>7.3f} {ratio:>6.2f} "
              f"{r['cpu_s'] / args.limit:>11.3f} {cpu_ratio:>10.2f}  {same}{note}")


if __name__ == "__main__":
    main()
