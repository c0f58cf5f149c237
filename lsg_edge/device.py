"""Which device each part runs on: `--device auto|cpu|cuda|metal`, resolved against the installed build.

Pure decisions over facts: `resolve_llama_device` takes what the llama.cpp build offers (a
`LlamaBuild`, probed by `backends.llama.llama_build()`), `choose_onnx_providers` takes the list
onnxruntime reports. A device that was asked for and is not in the build is a `DeviceError` that
names the flag and the install recipe — never a silent fallback to the CPU, which is what costs
users of GPU runtimes their days: everything "works", ten times slower.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .errors import DeviceError, OptionsError

__all__ = [
    "DEVICES",
    "LlamaBuild",
    "LlamaDevice",
    "LlamaPlacement",
    "resolve_llama_device",
    "choose_onnx_providers",
    "onnx_providers",
    "check_onnx_providers",
]

DEVICES = ("auto", "cpu", "cuda", "metal")

# ggml backend registry names per device (Metal's registry was renamed "MTL" in later ggml).
_GGML_BACKENDS = {"cuda": ("CUDA",), "metal": ("Metal", "MTL")}

_README = "README section 'Devices: CPU, CUDA, Metal, Jetson'"
_LLAMA_INSTALL = {
    # The architecture flag (the GPU's compute capability, 90 for H100/H200) saves most of the build.
    "cuda": 'CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=<arch, e.g. 90>" '
            "pip install --force-reinstall --no-cache-dir llama-cpp-python==0.3.36",
    "metal": 'CMAKE_ARGS="-DGGML_METAL=on" pip install --force-reinstall --no-cache-dir llama-cpp-python==0.3.36',
}
_ONNX_INSTALL = {
    "cuda": "pip uninstall onnxruntime && pip install onnxruntime-gpu (Jetson: the JetPack onnxruntime-gpu wheel)",
    "metal": "the standard onnxruntime wheel for macOS (arm64) ships CoreMLExecutionProvider",
}

_CPU_PROVIDER = "CPUExecutionProvider"
# The provider that does the device's work. The CPU provider is listed after it on purpose:
# onnxruntime places each *node* the GPU provider cannot run on the CPU (a partition, not a
# fallback of the whole session); the whole-session fallback is caught by check_onnx_providers.
_ONNX_PROVIDER = {"cpu": _CPU_PROVIDER, "cuda": "CUDAExecutionProvider", "metal": "CoreMLExecutionProvider"}


@dataclass(frozen=True)
class LlamaDevice:
    """One device ggml enumerates (e.g. "CUDA0", "NVIDIA Jetson Orin", kind "gpu")."""

    name: str
    description: str
    kind: str  # "cpu" | "gpu" | "igpu" | "accel" | "other"
    backend: str  # ggml backend registry name: "CPU", "CUDA", "Metal", ...


@dataclass(frozen=True)
class LlamaBuild:
    """What the installed llama.cpp build can do (facts; see `backends.llama.llama_build`)."""

    package_version: str  # llama-cpp-python version; it pins one llama.cpp revision
    gpu_offload: bool  # llama_supports_gpu_offload(): a GPU backend with at least one device
    mmap: bool  # llama_supports_mmap(): weights can be memory-mapped (LlamaOptions.use_mmap)
    backends: tuple[str, ...]  # ggml backend registry names compiled in, e.g. ("CUDA", "CPU")
    devices: tuple[LlamaDevice, ...]  # every device ggml enumerates; () if not exposed
    system_info: str  # llama_print_system_info(): CPU features and backend flags


@dataclass(frozen=True)
class LlamaPlacement:
    """Where the LLM runs, as resolved from the flags and the build."""

    device: str  # "cpu", "cuda", "metal", or another ggml GPU backend lowercased ("vulkan")
    n_gpu_layers: int  # layers offloaded (-1 = all, 0 = none)
    backend: str  # ggml backend that does the work: "CPU", "CUDA", "Metal", ...


def _check_device(device: str) -> None:
    if device not in DEVICES:
        raise OptionsError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")


def _gpu_devices(build: LlamaBuild, backends: Sequence[str] | None = None) -> list[LlamaDevice]:
    return [
        d for d in build.devices
        if d.kind in ("gpu", "igpu") and (backends is None or d.backend in backends)
    ]


def resolve_llama_device(device: str, n_gpu_layers: int | None, build: LlamaBuild) -> LlamaPlacement:
    """Resolve `--device` and `--n-gpu-layers` (None = the device's default) against a build.

    auto: the build's GPU if it offloads (all layers unless told), else the CPU; cpu: no layers
    offloaded; cuda / metal: the build must have that backend and a device of it, all layers by
    default. Contradictions (`--device cpu --n-gpu-layers 8`) are OptionsError; a device the build
    lacks is DeviceError with the install command.
    """
    _check_device(device)
    if n_gpu_layers is not None and n_gpu_layers < -1:
        raise OptionsError(f"--n-gpu-layers must be -1 (all), 0 or a layer count, got {n_gpu_layers}")
    if device == "cpu":
        if n_gpu_layers not in (None, 0):
            raise OptionsError(f"--device cpu contradicts --n-gpu-layers {n_gpu_layers} (drop one of them)")
        return LlamaPlacement("cpu", 0, "CPU")
    if device == "auto":
        if n_gpu_layers == 0:
            return LlamaPlacement("cpu", 0, "CPU")
        gpus = _gpu_devices(build)
        if build.gpu_offload and gpus:
            backend = gpus[0].backend
            wanted = {b: name for name, names in _GGML_BACKENDS.items() for b in names}
            return LlamaPlacement(wanted.get(backend, backend.lower()), _all(n_gpu_layers), backend)
        if n_gpu_layers is not None:
            raise DeviceError(
                f"--n-gpu-layers {n_gpu_layers} asks for GPU offload, but this llama.cpp build is "
                f"CPU-only (backends: {', '.join(build.backends) or 'CPU'}); see the {_README}"
            )
        return LlamaPlacement("cpu", 0, "CPU")
    names = _GGML_BACKENDS[device]
    label = "CUDA" if device == "cuda" else "Metal"
    if not any(b in names for b in build.backends):
        raise DeviceError(
            f"--device {device}: this llama.cpp build (llama-cpp-python {build.package_version}) has no "
            f"{label} backend (it has: {', '.join(build.backends) or 'CPU'}); reinstall it with "
            f"{_LLAMA_INSTALL[device]} — see the {_README}"
        )
    if n_gpu_layers == 0:
        raise OptionsError(f"--device {device} contradicts --n-gpu-layers 0 (use --device cpu)")
    gpus = _gpu_devices(build, names)
    if not gpus:
        raise DeviceError(
            f"--device {device}: llama.cpp has a {label} backend but sees no {label} device "
            "(driver not loaded? CUDA_VISIBLE_DEVICES empty?)"
        )
    return LlamaPlacement(device, _all(n_gpu_layers), gpus[0].backend)


def _all(n_gpu_layers: int | None) -> int:
    return -1 if n_gpu_layers is None else n_gpu_layers


def choose_onnx_providers(device: str, available: Sequence[str]) -> list[str]:
    """onnxruntime execution providers for `device`, given `ort.get_available_providers()`.

    auto: CUDA if this onnxruntime has it, else CPU. CoreML is used only on `--device metal`:
    it is untested here, and our Whisper decoder grows its KV cache every step (dynamic shapes),
    which CoreML may hand back to the CPU node by node — a user should opt in, and measure.
    """
    _check_device(device)
    if device == "auto":
        device = "cuda" if _ONNX_PROVIDER["cuda"] in available else "cpu"
    provider = _ONNX_PROVIDER[device]
    if provider not in available:
        raise DeviceError(
            f"compute device {device}: this onnxruntime has no {provider} (it has: {', '.join(available)}); "
            f"install: {_ONNX_INSTALL[device]} — see the {_README}"
        )
    return [provider] if provider == _CPU_PROVIDER else [provider, _CPU_PROVIDER]


def onnx_providers(device: str) -> list[str]:
    """`choose_onnx_providers` against the installed onnxruntime."""
    from .runtimes import import_onnxruntime  # only when asked: the text path never loads onnxruntime

    return choose_onnx_providers(device, import_onnxruntime().get_available_providers())


def check_onnx_providers(requested: Sequence[str], active: Sequence[str], what: str) -> None:
    """DeviceError if a session did not get the provider it asked for first.

    onnxruntime only *warns* when e.g. the CUDA provider fails to initialise (missing cuDNN) and
    then runs everything on the CPU; `active` is `session.get_providers()`.
    """
    if requested and requested[0] not in active:
        raise DeviceError(
            f"{what}: onnxruntime could not start {requested[0]} (running: {', '.join(active)}); "
            f"check the GPU libraries (CUDA, cuDNN) — see the {_README}"
        )
