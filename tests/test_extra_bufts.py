"""llama.cpp's extra CPU buffer types (AMX, repacking): the per-machine decision and the real probe."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lsg_edge.backends.cpu_buffers import (
    ENV_VAR,
    ProbeResult,
    amx_in_play,
    cpu_flags,
    decide,
    interpret_probe_exit,
    requested_setting,
    run_probe,
)
from lsg_edge.errors import OptionsError

AMX_BUILD = "CPU : SSE3 = 1 | AVX512 = 1 | AMX_INT8 = 1 | OPENMP = 1 | REPACK = 1"
PLAIN_BUILD = "CPU : SSE3 = 1 | AVX2 = 1 | OPENMP = 1 | REPACK = 1"
SPR_FLAGS = frozenset("sse4_2 avx2 avx512f avx512_vnni amx_bf16 amx_tile amx_int8".split())
ICELAKE_FLAGS = frozenset("sse4_2 avx2 avx512f avx512_vnni".split())


def _never():
    raise AssertionError("the probe must not run here")


def _probe(safe):
    return lambda: (ProbeResult(safe, "faked"), False)


# --- what was asked ------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [("0", "off"), ("1", "on"), ("auto", "auto"), (" OFF ", "off"), ("on", "on")])
def test_the_environment_variable_forces_either_way(raw, expected):
    assert requested_setting(None, {ENV_VAR: raw}) == (expected, ENV_VAR)


def test_the_flag_wins_over_the_environment_and_auto_is_the_default():
    assert requested_setting("on", {ENV_VAR: "0"}) == ("on", "--extra-bufts")
    assert requested_setting(None, {}) == ("auto", "default")
    assert requested_setting(None, {ENV_VAR: ""}) == ("auto", "default")


@pytest.mark.parametrize("explicit, env", [(None, "yes"), (None, "2"), ("maybe", "")])
def test_a_bad_setting_is_an_options_error(explicit, env):
    with pytest.raises(OptionsError, match="0, 1 or auto|auto, on, off"):
        requested_setting(explicit, {ENV_VAR: env})


# --- the rule on the build and the CPU -----------------------------------------------------------

def test_amx_is_in_play_only_with_amx_kernels_and_an_amx_cpu():
    assert amx_in_play(AMX_BUILD, SPR_FLAGS)
    assert not amx_in_play(PLAIN_BUILD, SPR_FLAGS)  # a build without the kernels never uses them
    assert not amx_in_play(AMX_BUILD, ICELAKE_FLAGS)
    assert amx_in_play(AMX_BUILD, None)  # flags unknown (not Linux): the build decides


def test_cpu_flags_come_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu avx2 amx_tile amx_int8\n\n"
                       "processor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(cpuinfo) == frozenset({"fpu", "avx2", "amx_tile", "amx_int8"})
    assert cpu_flags(tmp_path / "missing") is None


# --- the decision ---------------------------------------------------------------------------------

def test_without_amx_extra_buffers_stay_on_and_nothing_is_probed():
    decision = decide("auto", "default", amx=False, probe=_never)
    assert decision.enabled and decision.source == "rule"


def test_with_amx_the_probe_decides():
    crashed = decide("auto", "default", amx=True, probe=lambda: (ProbeResult(False, "killed by SIGILL"), False))
    assert not crashed.enabled and crashed.source == "probe" and "SIGILL" in crashed.reason
    passed = decide("auto", "default", amx=True, probe=lambda: (ProbeResult(True, "ok"), True))
    assert passed.enabled and passed.source == "cached probe"


def test_an_inconclusive_probe_takes_the_plain_path():
    decision = decide("auto", "default", amx=True, probe=_probe(None))
    assert not decision.enabled and "inconclusive" in decision.reason


@pytest.mark.parametrize("amx", [True, False])
def test_forcing_skips_the_probe(amx):
    assert decide("on", ENV_VAR, amx=amx, probe=_never).enabled
    off = decide("off", "--extra-bufts", amx=amx, probe=_never)
    assert not off.enabled and off.source == "--extra-bufts"


def test_probe_exits_are_read_as_crash_pass_or_inconclusive():
    assert interpret_probe_exit(-4, "", "") == ProbeResult(False, "the probe process was killed by SIGILL")
    assert interpret_probe_exit(-11, "", "").safe is False
    assert interpret_probe_exit(0, "lsg-edge extra-bufts probe: ok\n", "").safe is True
    assert interpret_probe_exit(0, "", "").safe is None  # exited, but never said it decoded
    inconclusive = interpret_probe_exit(1, "", "Traceback ...\nValueError: bad model\n")
    assert inconclusive.safe is None and "ValueError: bad model" in inconclusive.detail


# --- the real thing -------------------------------------------------------------------------------

def test_a_real_probe_is_conclusive_and_matches_this_machine(default_gguf):
    from lsg_edge.backends.llama import llama_build

    result = run_probe(default_gguf, n_threads=2)
    assert result.safe is not None, result.detail
    if not amx_in_play(llama_build().system_info, cpu_flags()):
        assert result.safe, result.detail  # repacking alone is llama.cpp's default everywhere
    if result.safe is False:
        assert "killed by" in result.detail


def test_a_probe_that_cannot_load_its_model_is_inconclusive(tmp_path):
    not_a_model = tmp_path / "x.gguf"
    not_a_model.write_bytes(b"GGUF" + b"\0" * 64)
    result = run_probe(not_a_model, n_threads=2)
    assert result.safe is None and "exited with" in result.detail


def test_info_shows_the_decision_and_the_environment_forces_it(default_gguf):
    env = {**os.environ, ENV_VAR: "0"}
    out = subprocess.run([sys.executable, "-m", "lsg_edge.cli", "info", "--json"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    decision = json.loads(out.stdout)["llama_cpp"]["extra_bufts"]
    assert decision["enabled"] is False and decision["source"] == ENV_VAR and decision["setting"] == "off"
    text = subprocess.run([sys.executable, "-m", "lsg_edge.cli", "info"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert f"extra CPU buffers: off (forced off by {ENV_VAR}" in text.stdout


def test_the_flag_wins_over_the_environment_on_a_real_run(default_gguf):
    # Where AMX crashes (as on the machine this was written on), LSG_EDGE_EXTRA_BUFTS=1 alone would
    # kill the run; --extra-bufts off must override it.
    result = subprocess.run(
        [sys.executable, "-m", "lsg_edge.cli", "translate", "--stdin", "--threads", "1", "--extra-bufts", "off"],
        input="Die Polizei sucht nach Zeugen.\n", capture_output=True, text=True, timeout=300,
        env={**os.environ, ENV_VAR: "1"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
