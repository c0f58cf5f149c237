"""The real default model (Gemma 3 270M GGUF) through the Python API and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import sacrebleu

from lsg_edge import PolicyOptions, SessionOptions
from lsg_edge.text.source import split_words
from tests.helpers.cli import CLI, one_line_error, run_cli
from tests.helpers.interrupt import default_sigint

SENTENCE = "Die Polizei sucht nach Zeugen des Unfalls auf der Autobahn."


def translate(engine, sentence: str, policy: PolicyOptions):
    session = engine.create_session("de", "en", policy=policy)
    commits = []
    for word in split_words(sentence):
        commits += session.push(word)
    commits += session.finish()
    return commits


def text_of(commits) -> str:
    return "".join(c.separator + c.text for c in commits)


@pytest.mark.parametrize("name", ["lsg", "wait-k", "offline"])
def test_api_translates_newstest_sentences_into_english(engine, wmt_pairs, name):
    policy = engine.policy_options("de", "en", name=name, k=3)
    hypotheses, references, early = [], [], 0
    for source, reference in wmt_pairs[:4]:
        commits = translate(engine, source, policy)
        n_source = len(split_words(source))
        early += sum(c.source_read < n_source and bool(c.text) for c in commits)
        hypotheses.append(text_of(commits))
        references.append(reference)
    chrf = sacrebleu.corpus_chrf(hypotheses, [references]).score
    assert chrf > 30, (chrf, hypotheses)
    if name == "offline":
        assert early == 0
    else:
        assert early > 0  # text left while the source was still arriving


def test_lsg_and_paper_settings_differ_from_wait_k_timing(engine):
    lsg = translate(engine, SENTENCE, PolicyOptions(name="lsg", low_bound=1, top_bound=4))
    waitk = translate(engine, SENTENCE, PolicyOptions(name="wait-k", k=3))
    assert [c.source_read for c in lsg] != [c.source_read for c in waitk]
    assert "police" in text_of(lsg).lower() and "police" in text_of(waitk).lower()


def test_long_line_is_cut_into_bounded_windows_and_nothing_is_lost(engine, wmt_pairs):
    words = " ".join(source.rstrip(".!?") for source, _ in wmt_pairs[:20]).replace(".", "").split()[:150]
    session = engine.create_session("de", "en", policy=PolicyOptions(name="offline"), options=SessionOptions(max_source_words=40))
    commits = []
    for word in words:
        commits += session.push(word)
    commits += session.finish()
    ends = [c for c in commits if c.sentence_end]
    assert len(ends) == 4  # 150 words in windows of 40
    assert all(c.source_read <= 40 for c in commits)
    assert sum(len(c.text.split()) for c in commits) > 60


def test_cli_translates_stdin(default_gguf):
    result = run_cli(["translate", "--stdin", "--src", "de", "--tgt", "en"], SENTENCE.encode())
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert out.endswith("\n") and out.count("\n") == 1
    assert "police" in out.lower() and "witness" in out.lower()


def test_cli_json_events(default_gguf):
    result = run_cli(["translate", "--stdin", "--json", "--policy", "wait-k", "--k", "2"], (SENTENCE + "\nDanke schön.\n").encode())
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert {e["sentence"] for e in events} == {0, 1}
    assert [e["sentence_end"] for e in events].count(True) == 2
    first = [e for e in events if e["sentence"] == 0]
    assert first[0]["source_read"] == 2  # wait-2
    assert [e["source_read"] for e in first] == sorted(e["source_read"] for e in first)
    assert all(e["elapsed_ms"] >= 0 for e in events)


def test_cli_catch_up_reads_words_that_came_together_before_deciding(default_gguf):
    # Piped at once, every word of the first sentence was already waiting: with --catch-up none of
    # them is decided on alone, and the sentence comes out whole at its end, as offline would.
    stdin = (SENTENCE + "\nDanke schön.\n").encode()
    result = run_cli(["translate", "--stdin", "--json", "--policy", "wait-k", "--k", "2", "--catch-up"], stdin)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.decode().splitlines()]
    first = [e for e in events if e["sentence"] == 0]
    assert len(first) == 1 and first[0]["sentence_end"] and first[0]["source_read"] == len(split_words(SENTENCE))
    assert "police" in first[0]["text"].lower()
    assert [e["sentence_end"] for e in events].count(True) == 2


def test_cli_streams_before_the_line_ends(default_gguf):
    """A slow typist sees committed words while the sentence is still being typed."""
    process = subprocess.Popen(CLI + ["translate", "--stdin", "--json", "--policy", "wait-k", "--k", "1"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for word in "Die Polizei sucht nach Zeugen ".split():
            process.stdin.write((word + " ").encode())
            process.stdin.flush()
        first = process.stdout.readline()  # arrives with stdin still open, no newline typed
        assert json.loads(first)["source_read"] <= 5
    finally:
        process.stdin.close()
        process.wait(timeout=300)
    assert process.returncode == 0


def test_cli_invalid_utf8_stops_after_translating_what_came_before(default_gguf):
    """Bytes that are not UTF-8 are one line and exit 1; the sentence before them is translated
    and written first, and nothing after them is guessed at."""
    result = run_cli(["translate", "--stdin", "--policy", "wait-k", "--k", "2"],
                     b"Guten Morgen.\nDie Polizei \xff\xfe sucht.\n")
    assert result.returncode == 1
    message = one_line_error(result)
    assert "not UTF-8" in message and "offset 26" in message
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 2 and all(line.strip() for line in lines)  # "Good morning." and "The police…"


@pytest.mark.parametrize("stdin", [b"", b"  \n\n\t"])
def test_cli_empty_input_is_one_line_and_exit_1(default_gguf, stdin):
    result = run_cli(["translate", "--stdin"], stdin)
    assert result.returncode == 1 and result.stdout == b""
    assert "empty" in one_line_error(result)


def test_cli_missing_and_truncated_models_fail_in_one_line(default_gguf, tmp_path):
    missing = run_cli(["translate", "--stdin", "--model", str(tmp_path / "none.gguf")], b"Hallo")
    assert missing.returncode == 2
    assert missing.stderr.decode().strip().count("\n") == 0 and "none.gguf" in missing.stderr.decode()
    truncated = tmp_path / "truncated.gguf"
    with open(default_gguf, "rb") as f:
        truncated.write_bytes(f.read(2_000_000))
    result = run_cli(["translate", "--stdin", "--model", str(truncated)], b"Hallo")
    assert result.returncode == 2
    message = result.stderr.decode().strip()
    assert message.count("\n") == 0 and "truncated.gguf" in message and "Traceback" not in message


def test_cli_bad_option_value_is_one_line(default_gguf):
    result = run_cli(["translate", "--stdin", "--alpha", "3"], b"Hallo")
    assert result.returncode == 2
    assert "--alpha" in result.stderr.decode() and "Traceback" not in result.stderr.decode()


def test_cli_closed_stdout_exits_cleanly(default_gguf):
    text = (SENTENCE + "\n") * 3
    shell = f"{' '.join(CLI)} translate --stdin --policy wait-k | head -c 3"
    result = subprocess.run(["bash", "-c", shell], input=text.encode(), capture_output=True, timeout=300)
    assert len(result.stdout) == 3 and result.stdout[:1].isupper()  # the first sentence's start
    assert b"Traceback" not in result.stderr


def test_cli_ctrl_c_flushes_committed_words_and_exits(default_gguf):
    process = subprocess.Popen(CLI + ["translate", "--stdin", "--policy", "wait-k", "--k", "1"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=default_sigint)
    process.stdin.write(b"Die Polizei sucht nach Zeugen ")
    process.stdin.flush()
    deadline = time.monotonic() + 120
    first = b""
    os.set_blocking(process.stdout.fileno(), False)
    while not first and time.monotonic() < deadline:
        first = process.stdout.read() or b""
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    rest, err = process.communicate(timeout=60)
    assert first.startswith(b"The")
    assert process.returncode == 130
    assert b"Traceback" not in err
