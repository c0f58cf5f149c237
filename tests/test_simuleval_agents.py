"""SimulEval 1.1.4 driving lsg-edge through its agents (real `simuleval` and `lsg-edge` processes, the
real default models): the same hypotheses and delays as `lsg-edge eval` on the same settings."""

from __future__ import annotations

import argparse
import csv
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lsg_edge.evaluation.instance import Instance, read_instances
from lsg_edge.evaluation.scoring import latency_scores, quality_scores
from tests.helpers.markers import SPEECH, loads

SIMULEVAL = [sys.executable, "-m", "simuleval.cli"]
LSG_EDGE = [sys.executable, "-m", "lsg_edge.cli"]
TEXT_AGENT = "lsg_edge.simuleval_agents.LsgTextAgent"
SPEECH_AGENT = "lsg_edge.simuleval_agents.LsgSpeechAgent"
N_SENTENCES = 20
N_UTTERANCES = 3
TOLERANCE = 1e-6


def run(command: list[str], timeout: float = 1800) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def simuleval_table(output: Path) -> dict[str, float]:
    """SimulEval's own scores.tsv (its values are rounded to 3 decimals)."""
    with open(output / "scores.tsv", encoding="utf-8") as f:
        return {k: float(v) for k, v in next(csv.DictReader(f, delimiter="\t")).items()}


def assert_same_scores(theirs: list[Instance], ours: list[Instance], quality: str) -> None:
    for name, scores in ((quality, lambda xs: quality_scores(xs, (quality,))),
                         ("AL", lambda xs: latency_scores(xs, computation_aware=False))):
        assert scores(theirs)[name] == pytest.approx(scores(ours)[name], abs=TOLERANCE), name


@pytest.fixture(scope="module")
def text_corpus(wmt_pairs, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("wmt")
    pairs = wmt_pairs[:N_SENTENCES]
    (folder / "de.txt").write_text("".join(de + "\n" for de, _ in pairs), encoding="utf-8")
    (folder / "en.txt").write_text("".join(en + "\n" for _, en in pairs), encoding="utf-8")
    return folder / "de.txt", folder / "en.txt"


def test_importing_lsg_edge_does_not_import_simuleval():
    code = ("import sys, lsg_edge, lsg_edge.cli, lsg_edge.evaluation, lsg_edge.evaluation.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'simuleval'))")
    assert run([sys.executable, "-c", code]).stdout.strip() == "[]"


@pytest.mark.model  # both child processes load the default model
@pytest.mark.slow  # minutes: 20 sentences, twice
@pytest.mark.parametrize("policy", [["--policy", "lsg"], ["--policy", "wait-k", "--k", "3"]], ids=["lsg", "wait-3"])
def test_text_agent_gives_lsg_edge_eval_instances(text_corpus, tmp_path, policy):
    source, reference = text_corpus
    settings = [*policy, "--threads", "1"]
    run(LSG_EDGE + ["eval", "--source", str(source), "--reference", str(reference),
                    "--output", str(tmp_path / "eval"), "--no-progress", *settings])
    run(SIMULEVAL + ["--agent-class", TEXT_AGENT, "--source", str(source), "--target", str(reference),
                     "--output", str(tmp_path / "simuleval"), "--no-progress-bar", *settings])

    ours = read_instances(tmp_path / "eval" / "instances.log")
    theirs = read_instances(tmp_path / "simuleval" / "instances.log")
    assert len(theirs) == len(ours) == N_SENTENCES
    for mine, its in zip(ours, theirs):
        assert its.prediction == mine.prediction, mine.index
        assert its.delays == mine.delays, mine.index
        assert its.source_length == mine.source_length
    assert any(len(set(i.delays)) > 1 for i in ours)  # simultaneous: not everything written at the end
    assert_same_scores(theirs, ours, "BLEU")
    table = simuleval_table(tmp_path / "simuleval")  # SimulEval's own scorers agree (to its rounding)
    expected = {"BLEU": quality_scores(ours, ("BLEU",))["BLEU"], "AL": latency_scores(ours)["AL"]}
    for name, value in expected.items():
        assert table[name] == pytest.approx(value, abs=5e-4), name


@pytest.fixture(scope="module")
@loads(SPEECH)
def speech_runs(data_dir, tmp_path_factory) -> dict[str, list[Instance]]:
    """`lsg-edge eval --audio-manifest` on the first utterances, and SimulEval's speech agent on
    the same audio in 20 ms segments (one VAD frame) and in 640 ms segments."""
    manifest = data_dir / "librispeech-dev" / "transcripts.tsv"
    folder = tmp_path_factory.mktemp("librispeech")
    with open(manifest, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))[:N_UTTERANCES]
    (folder / "wavs.txt").write_text("".join(f"{manifest.parent / r['audio_path']}\n" for r in rows))
    (folder / "refs.txt").write_text("".join(f"{r['transcript']}\n" for r in rows))
    run(LSG_EDGE + ["eval", "--audio-manifest", str(manifest), "--limit", str(N_UTTERANCES), "--threads", "2",
                    "--output", str(folder / "eval"), "--no-progress"])
    runs = {"eval": read_instances(folder / "eval" / "instances.log")}
    for segment_ms in ("20", "640"):
        output = folder / f"simuleval-{segment_ms}"
        run(SIMULEVAL + ["--agent-class", SPEECH_AGENT, "--source", str(folder / "wavs.txt"),
                         "--target", str(folder / "refs.txt"), "--output", str(output), "--threads", "2",
                         "--source-segment-size", segment_ms, "--no-progress-bar"])
        runs[segment_ms] = read_instances(output / "instances.log")
    return runs


@pytest.mark.slow  # three Whisper runs over the same utterances (speech_runs)
def test_speech_agent_in_vad_frames_gives_lsg_edge_eval_instances(speech_runs):
    ours, theirs = speech_runs["eval"], speech_runs["20"]
    assert len(theirs) == len(ours) == N_UTTERANCES
    for mine, its in zip(ours, theirs):
        assert its.prediction == mine.prediction and mine.prediction
        assert its.delays == mine.delays, mine.index
        assert its.source_length == mine.source_length
    assert_same_scores(theirs, ours, "WER")


@pytest.mark.slow  # three Whisper runs over the same utterances (speech_runs)
def test_speech_agent_in_640_ms_segments_writes_at_the_end_of_the_segment(speech_runs):
    """The same words; each logged when the segment holding the frame that committed it ends."""
    ours, theirs = speech_runs["eval"], speech_runs["640"]
    for mine, its in zip(ours, theirs):
        assert its.prediction == mine.prediction
        assert list(its.delays) == [min(640.0 * math.ceil(d / 640.0), mine.source_length) for d in mine.delays]
    assert quality_scores(theirs, ("WER",)) == quality_scores(ours, ("WER",))
    assert latency_scores(theirs, computation_aware=False)["AL"] >= latency_scores(ours, computation_aware=False)["AL"]


@pytest.mark.parametrize("agent, argument, message", [
    (TEXT_AGENT, ["--delta", "-1"], "--delta must be non-negative"),
    (TEXT_AGENT, ["--model", "no-such-model.gguf"], "no-such-model.gguf"),
    (SPEECH_AGENT, ["--segment-ms", "50"], "--segment-ms must be within 100"),
    (SPEECH_AGENT, ["--policy", "alignatt", "--frames", "-1"], "--frames must be at least 0"),
    (SPEECH_AGENT, ["--beam", "0"], "--beam must be within 1"),
])
def test_bad_agent_arguments_are_one_line_errors(tmp_path, agent, argument, message):
    (tmp_path / "src.txt").write_text("x\n")
    result = subprocess.run(SIMULEVAL + ["--agent-class", agent, "--source", str(tmp_path / "src.txt"),
                                         "--target", str(tmp_path / "src.txt"), "--output", str(tmp_path / "out"),
                                         *argument], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("lsg-edge agent: error:") and message in last, result.stderr[-2000:]


def test_speech_agent_help_names_the_defaults_of_lsg_edge_asr():
    # The agent's argument group says its defaults are `lsg-edge asr`'s; a hand-written "(default:
    # …)" drifts when a default changes (α once read 0.8 here while both used 0.7).
    from lsg_edge.simuleval_agents import LsgSpeechAgent
    from lsg_edge.speech.cli import asr_command

    parser = argparse.ArgumentParser(add_help=False)
    LsgSpeechAgent.add_args(parser)
    agent_help = {action.dest: action.help or "" for action in parser._actions}
    asr_defaults = {param.name: param.default for param in asr_command.params}
    flags = ["k", "segment_ms", "delta", "alpha", "low_bound", "top_bound", "words_per_segment", "kl_direction",
             "draft_tokens", "frames", "beam", "encoder_window", "encoder_pad_ms", "min_silence_ms"]
    for flag in flags:
        named = re.search(r"[Dd]efault: ([^,)]+?)(?:[,)]|\.?$)", agent_help[flag])
        assert named, f"--{flag}: its help names no default: {agent_help[flag]!r}"
        assert named.group(1) == str(asr_defaults[flag]), flag
