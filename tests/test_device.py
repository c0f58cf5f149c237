"""Device resolution: --device auto|cpu|cuda|metal against the installed builds.

The pure resolution is checked over build descriptions written out by hand (a CPU-only build, a
CUDA build, a Metal build, a CUDA build with no visible GPU) and over the real build installed
here, which is CPU-only: asking it for cuda or metal must fail with the flag and the install
command in the message, never fall back to the CPU.
"""

from __future__ import annotations

import pytest

from lsg_edge.backends.llama import LlamaOptions, llama_build
from lsg_edge.device import (
    LlamaBuild,
    LlamaDevice,
    LlamaPlacement,
    check_onnx_providers,
    choose_onnx_providers,
    onnx_providers,
    resolve_llama_device,
)
from lsg_edge.errors import DeviceError, OptionsError

_CPU = LlamaDevice("CPU", "host CPU", "cpu", "CPU")
CPU_BUILD = LlamaBuild("0.3.36", gpu_offload=False, mmap=True, backends=("CPU",), devices=(_CPU,), system_info="")
CUDA_BUILD = LlamaBuild(
    "0.3.36", gpu_offload=True, mmap=True, backends=("CUDA", "CPU"),
    devices=(LlamaDevice("CUDA0", "Orin", "gpu", "CUDA"), _CPU), system_info="",
)
METAL_BUILD = LlamaBuild(
    "0.3.36", gpu_offload=True, mmap=True, backends=("Metal", "CPU"),
    devices=(LlamaDevice("Metal", "Apple M2", "igpu", "Metal"), _CPU), system_info="",
)
# Built with CUDA, run where no GPU is visible: ggml registers the backend with zero devices.
CUDA_BUILD_NO_GPU = LlamaBuild("0.3.36", gpu_offload=False, mmap=True, backends=("CUDA", "CPU"), devices=(_CPU,),
                               system_info="")


def test_auto_and_cpu_on_a_cpu_only_build():
    assert resolve_llama_device("auto", None, CPU_BUILD) == LlamaPlacement("cpu", 0, "CPU")
    assert resolve_llama_device("auto", 0, CPU_BUILD) == LlamaPlacement("cpu", 0, "CPU")
    assert resolve_llama_device("cpu", None, CPU_BUILD) == LlamaPlacement("cpu", 0, "CPU")


def test_auto_offloads_everything_on_a_gpu_build_and_cpu_forces_zero_layers():
    assert resolve_llama_device("auto", None, CUDA_BUILD) == LlamaPlacement("cuda", -1, "CUDA")
    assert resolve_llama_device("auto", 12, CUDA_BUILD) == LlamaPlacement("cuda", 12, "CUDA")
    assert resolve_llama_device("auto", None, METAL_BUILD) == LlamaPlacement("metal", -1, "Metal")
    assert resolve_llama_device("cpu", None, CUDA_BUILD) == LlamaPlacement("cpu", 0, "CPU")
    assert resolve_llama_device("cuda", None, CUDA_BUILD) == LlamaPlacement("cuda", -1, "CUDA")
    assert resolve_llama_device("metal", 20, METAL_BUILD) == LlamaPlacement("metal", 20, "Metal")


@pytest.mark.parametrize("device, flag", [("cuda", "-DGGML_CUDA=on"), ("metal", "-DGGML_METAL=on")])
def test_gpu_requested_on_a_cpu_only_build_names_the_flag_and_the_install(device, flag):
    for build in (CPU_BUILD, llama_build()):  # the hand-written one and the real one installed here
        with pytest.raises(DeviceError) as error:
            resolve_llama_device(device, None, build)
        message = str(error.value)
        assert f"--device {device}" in message and flag in message and "llama-cpp-python" in message


def test_other_gpu_build_and_no_visible_gpu_are_errors_not_fallbacks():
    with pytest.raises(DeviceError, match="--device metal"):
        resolve_llama_device("metal", None, CUDA_BUILD)
    with pytest.raises(DeviceError, match="sees no CUDA device"):
        resolve_llama_device("cuda", None, CUDA_BUILD_NO_GPU)
    # auto on that machine runs on the CPU: nothing was asked for explicitly.
    assert resolve_llama_device("auto", None, CUDA_BUILD_NO_GPU) == LlamaPlacement("cpu", 0, "CPU")
    with pytest.raises(DeviceError, match="--n-gpu-layers 8"):
        resolve_llama_device("auto", 8, CPU_BUILD)


def test_contradictory_flags_are_option_errors():
    with pytest.raises(OptionsError, match="--device cpu contradicts --n-gpu-layers 4"):
        resolve_llama_device("cpu", 4, CUDA_BUILD)
    with pytest.raises(OptionsError, match="--n-gpu-layers 0"):
        resolve_llama_device("cuda", 0, CUDA_BUILD)
    with pytest.raises(OptionsError, match="--n-gpu-layers"):
        resolve_llama_device("auto", -2, CUDA_BUILD)
    with pytest.raises(OptionsError, match="--device must be one of"):
        resolve_llama_device("gpu", None, CUDA_BUILD)
    with pytest.raises(OptionsError, match="--device"):
        LlamaOptions(model_path="x.gguf", device="vulkan")


def test_the_installed_build_is_described():
    build = llama_build()
    assert build.package_version == "0.3.36"
    assert "CPU" in build.backends
    assert any(d.kind == "cpu" for d in build.devices)
    assert "CPU" in build.system_info


def test_onnx_provider_choice():
    cpu_only = ["AzureExecutionProvider", "CPUExecutionProvider"]
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    mac = ["CoreMLExecutionProvider", "CPUExecutionProvider"]
    assert choose_onnx_providers("auto", cpu_only) == ["CPUExecutionProvider"]
    assert choose_onnx_providers("cpu", gpu) == ["CPUExecutionProvider"]
    assert choose_onnx_providers("auto", gpu) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_onnx_providers("cuda", gpu) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_onnx_providers("metal", mac) == ["CoreMLExecutionProvider", "CPUExecutionProvider"]
    # CoreML only when asked for (untested; dynamic decoder shapes), see choose_onnx_providers.
    assert choose_onnx_providers("auto", mac) == ["CPUExecutionProvider"]
    with pytest.raises(DeviceError, match="compute device cuda.*onnxruntime-gpu"):
        choose_onnx_providers("cuda", cpu_only)
    with pytest.raises(DeviceError, match="compute device metal.*CoreMLExecutionProvider"):
        choose_onnx_providers("metal", gpu)


def test_onnx_providers_of_the_installed_onnxruntime():
    assert onnx_providers("auto") == ["CPUExecutionProvider"]  # this build: CPU only
    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(DeviceError, match="compute device cuda"):
        onnx_providers("cuda")


def test_a_session_that_silently_fell_back_is_an_error():
    check_onnx_providers(["CUDAExecutionProvider", "CPUExecutionProvider"],
                         ["CUDAExecutionProvider", "CPUExecutionProvider"], "encoder")
    with pytest.raises(DeviceError, match="encoder: onnxruntime could not start CUDAExecutionProvider"):
        check_onnx_providers(["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"], "encoder")


def test_speech_runtime_asks_for_the_device_before_loading(tmp_path):
    from lsg_edge.errors import ModelError
    from lsg_edge.speech.onnx_runtime import RuntimeOptions, WhisperRuntime

    with pytest.raises(DeviceError, match="compute device cuda"):
        WhisperRuntime(tmp_path, RuntimeOptions(device="cuda"))
    with pytest.raises(ModelError, match="converted Whisper graph not found"):  # cpu passes the device check
        WhisperRuntime(tmp_path, RuntimeOptions(device="cpu"))


def test_the_default_engine_runs_on_the_cpu_here(engine):
    # No flags: auto, resolved on this CPU-only build to the CPU, no layers offloaded.
    assert engine.model.placement == LlamaPlacement("cpu", 0, "CPU")
