"""`lsg-edge info`: which device and which build each part runs on, threads, and versions.

Nothing is loaded but the two runtimes: the placement of each part is resolved exactly as the
engines resolve it (`lsg_edge.device`), so what this prints is what `translate` and `asr` would do
with the same flags — or the error they would stop with.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from typing import Any

import click

from .device import DEVICES, onnx_providers, resolve_llama_device
from .errors import DeviceError, LsgEdgeError, OptionsError
from .runtimes import import_onnxruntime

__all__ = ["runtime_report", "format_report", "info_command"]

_PROVIDER_DEVICES = {"CPUExecutionProvider": "cpu", "CUDAExecutionProvider": "cuda", "CoreMLExecutionProvider": "metal"}
# The Whisper graphs of lsg_edge.speech: both run in onnxruntime with the same providers.
_ONNX_PARTS = ("audio encoder", "audio decoder")


def runtime_report(
    device: str = "auto", n_gpu_layers: int | None = None, n_threads: int = 0, extra_bufts: str | None = None
) -> dict[str, Any]:
    """Versions, builds and the resolved placement of every part, as a JSON-able dict.

    `llama_cpp.extra_bufts` is whether llama.cpp may use its AMX / repacked CPU buffers here and
    why (`extra_bufts`: "auto" | "on" | "off", None = $LSG_EDGE_EXTRA_BUFTS); it may run the one-time
    probe of backends/cpu_buffers.py, exactly as loading a model would.

    `parts` lists the LLM (llama.cpp), the audio encoder and decoder (onnxruntime); a part whose
    device cannot be had carries `error` (the message the engine would raise) instead of a device.
    """
    from dataclasses import asdict

    from .backends.cpu_buffers import extra_bufts_decision
    from .backends.llama import default_threads, llama_build

    # onnxruntime before llama.cpp: the other order crashes CUDA builds (lsg_edge/runtimes.py).
    onnx = _onnxruntime_facts()
    threads = n_threads or default_threads()  # both engines default to every core up to 4
    build = llama_build()
    llm: dict[str, Any] = {"part": "LLM", "runtime": "llama.cpp", "threads": threads}
    try:
        placement = resolve_llama_device(device, n_gpu_layers, build)
        llm.update(device=placement.device, backend=placement.backend, n_gpu_layers=placement.n_gpu_layers)
    except LsgEdgeError as e:
        llm.update(error=str(e), error_type=type(e).__name__)
    parts = [llm]
    try:
        providers = onnx_providers(device)
        placed = {"device": _PROVIDER_DEVICES.get(providers[0], providers[0]), "providers": providers}
    except LsgEdgeError as e:
        placed = {"error": str(e), "error_type": type(e).__name__}
    parts += [{"part": name, "runtime": "onnxruntime", "threads": threads, **placed} for name in _ONNX_PARTS]
    return {
        "lsg_edge": _version("lsg-edge"),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu_cores": os.cpu_count() or 1,
        "requested_device": device,
        "llama_cpp": {
            "package": f"llama-cpp-python {build.package_version}",
            "backends": list(build.backends),
            "gpu_offload": build.gpu_offload,
            "mmap": build.mmap,
            "devices": [f"{d.name} ({d.description}, {d.kind})" for d in build.devices],
            "system_info": build.system_info,
            "extra_bufts": asdict(extra_bufts_decision(extra_bufts, build.package_version, build.system_info)),
        },
        "onnxruntime": onnx,
        "parts": parts,
    }


def _onnxruntime_facts() -> dict[str, Any]:
    try:
        onnxruntime = import_onnxruntime()
    except DeviceError:
        return {"package": "not installed", "providers": []}
    # onnxruntime, onnxruntime-gpu and the JetPack wheel all install the module `onnxruntime`.
    distributions = metadata.packages_distributions().get("onnxruntime", ["onnxruntime"])
    return {
        "package": f"{distributions[0]} {onnxruntime.__version__}",
        "providers": list(onnxruntime.get_available_providers()),
    }


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def format_report(report: dict[str, Any]) -> str:
    """The report as aligned text lines (what `lsg-edge info` prints)."""
    llama, onnx = report["llama_cpp"], report["onnxruntime"]
    lines = [
        f"lsg-edge {report['lsg_edge']} · Python {report['python']} · {report['platform']} · "
        f"{report['cpu_cores']} CPU cores · --device {report['requested_device']}",
        f"llama.cpp    {llama['package']}; ggml backends: {', '.join(llama['backends'])}; "
        f"GPU offload: {_yes(llama['gpu_offload'])}; mmap: {_yes(llama['mmap'])}",
        f"             devices: {'; '.join(llama['devices']) or 'not enumerated'}",
        f"             {llama['system_info']}",
        f"             extra CPU buffers: {_on(llama['extra_bufts'])} ({llama['extra_bufts']['reason']}; "
        f"source: {llama['extra_bufts']['source']})",
        f"onnxruntime  {onnx['package']}; providers: {', '.join(onnx['providers'])}",
        "",
        f"{'part':<14} {'runtime':<12} {'device':<7} {'build / provider':<24} {'threads':>7}  notes",
    ]
    for part in report["parts"]:
        if "error" in part:
            lines.append(f"{part['part']:<14} {part['runtime']:<12} {'-':<7} {'unavailable':<24} {'-':>7}  {part['error']}")
            continue
        if part["runtime"] == "llama.cpp":
            build, notes = part["backend"], f"n_gpu_layers {part['n_gpu_layers']}"
        else:
            # The CPU provider after a GPU one takes the nodes the GPU provider cannot run.
            build, notes = part["providers"][0], " then ".join(part["providers"][1:])
        lines.append(f"{part['part']:<14} {part['runtime']:<12} {part['device']:<7} {build:<24} {part['threads']:>7}  {notes}".rstrip())
    return "\n".join(lines)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _on(decision: dict[str, Any]) -> str:
    return "on (AMX / weight repacking)" if decision["enabled"] else "off"


@click.command("info")
@click.option("--device", type=click.Choice(list(DEVICES)), default="auto", show_default=True,
              help="The device to resolve, as translate/asr would.")
@click.option("--n-gpu-layers", type=int, help="Layers offloaded to the GPU (-1: all).")
@click.option("--threads", type=int, default=0, help="CPU threads (default: cores, up to 4).")
@click.option("--extra-bufts", type=click.Choice(["auto", "on", "off"]),
              help="llama.cpp's AMX / repacked CPU buffers (default: $LSG_EDGE_EXTRA_BUFTS, else auto).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def info_command(device: str, n_gpu_layers: int | None, threads: int, extra_bufts: str | None, as_json: bool) -> None:
    """Report the device and build each part runs on, thread counts and runtime versions.

    Exits with an error (after the report) when a part cannot run on the requested device.
    """
    report = runtime_report(device, n_gpu_layers, threads, extra_bufts)
    click.echo(json.dumps(report, ensure_ascii=False) if as_json else format_report(report))
    sys.stdout.flush()
    failed = [p for p in report["parts"] if "error" in p]
    if failed:
        # The same typed error (and exit code) the engine would stop with, for the first part.
        error = OptionsError if failed[0]["error_type"] == "OptionsError" else DeviceError
        more = f" (and {len(failed) - 1} more parts, see above)" if len(failed) > 1 else ""
        raise error(f"{failed[0]['part']}: {failed[0]['error']}{more}")
