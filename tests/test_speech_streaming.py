"""LSG over audio: invariants of the commits, silence handling, loop guards, audio input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lsg_edge.errors import InputError, OptionsError
from lsg_edge.policy.bounds import words_allowed
from lsg_edge.speech.audio_io import file_blocks, read_audio, to_mono_16k
from lsg_edge.speech.engine import EncoderOptions, SpeechEngine
from lsg_edge.speech.loops import trim_repetition
from lsg_edge.speech.policies import SpeechPolicyOptions, make_policy
from lsg_edge.speech.session import AsrSession, SessionOptions
from lsg_edge.speech.vad import EnergyVad

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "librispeech-dev"


def _utterance(k: int) -> tuple[np.ndarray, str]:
    with open(DATA / "transcripts.tsv", newline="") as f:
        row = list(csv.DictReader(f, delimiter="\t"))[k]
    return read_audio(DATA / row["audio_path"]), row["transcript"]


@pytest.fixture(scope="module")
def engine() -> SpeechEngine:
    return SpeechEngine.load("tiny.en", encoder_options=EncoderOptions(window="tight"))


def _stream(engine: SpeechEngine, audio: np.ndarray, **policy) -> list:
    session = AsrSession(engine, SessionOptions(policy=SpeechPolicyOptions(**policy)))
    commits = []
    for block in file_blocks(audio):
        commits += session.push(block)
    return commits + session.finish()


def test_lsg_commits_whole_words_within_the_range_constraint(engine: SpeechEngine) -> None:
    audio, reference = _utterance(0)
    options = SpeechPolicyOptions(delta=0.0, alpha=0.0, low_bound=2, words_per_segment=1)  # test always passes
    policy = make_policy(engine, engine.prompt(None, "transcribe"), options)
    committed_text = ""
    n_segments = audio.size // options.segment_samples
    for j in range(1, n_segments + 1):
        tokens = policy.step(audio, j)
        # Bounded by L: never more words than j − L + 1 segments allow.
        assert policy.n_words <= j - options.low_bound + 1
        if tokens:
            text = engine.vocab.text(tokens)
            assert text[0] == " ", "a commit starts at a word boundary"
            committed_text += text
        # With every position passing, LSG writes all the bound allows (the draft has words left).
        assert words_allowed(j, policy.n_words, options.low_bound) <= 1
    final = committed_text + engine.vocab.text(policy.finish(audio))
    assert engine.vocab.text(policy.committed) == final
    assert len(final.split()) >= len(reference.split()) - 3


def test_lsg_reads_when_nothing_passes_until_forced(engine: SpeechEngine) -> None:
    audio, _ = _utterance(0)
    options = SpeechPolicyOptions(delta=1e9, alpha=1.0, low_bound=1, top_bound=2, words_per_segment=1)
    policy = make_policy(engine, engine.prompt(None, "transcribe"), options)
    for j in range(1, 6):
        policy.step(audio, j)
        # Only the upper bound forces writes: exactly j − L − U + 1 words, never more.
        assert policy.n_words == max(0, j - options.low_bound - options.top_bound + 1)


def test_streamed_commits_are_final_and_ordered(engine: SpeechEngine) -> None:
    audio, reference = _utterance(2)
    commits = _stream(engine, audio)
    assert commits, "speech produced no words"
    times = [c.audio_ms for c in commits]
    assert times == sorted(times) and times[-1] <= 1000 * audio.size // 16_000 + 1
    assert commits[-1].end_of_window
    text = "".join(c.text for c in commits)
    assert sum(c.n_words for c in commits) == len(text.split())
    assert "confession" in text.lower() and "bishop" in text.lower()


def test_local_agreement_and_offline_policies_run(engine: SpeechEngine) -> None:
    audio, _ = _utterance(1)
    for name in ("local-agreement", "offline"):
        text = "".join(c.text for c in _stream(engine, audio, name=name)).lower()
        assert "gloom" in text


def test_silence_reaches_no_decoder(engine: SpeechEngine) -> None:
    calls = engine.runtime.n_encoder_calls, engine.runtime.n_decoder_calls
    rng = np.random.default_rng(0)
    quiet = (rng.standard_normal(16_000 * 4) * 1e-4).astype(np.float32)
    assert _stream(engine, quiet) == []
    assert (engine.runtime.n_encoder_calls, engine.runtime.n_decoder_calls) == calls


def test_pause_cuts_the_window_and_commits_everything(engine: SpeechEngine) -> None:
    first, _ = _utterance(1)
    second, _ = _utterance(2)
    audio = np.concatenate([first, np.zeros(16_000 * 2, np.float32), second])
    commits = _stream(engine, audio)
    cuts = [c for c in commits if c.end_of_window]
    assert len(cuts) == 2
    # Everything of the first sentence is out before the second one starts.
    first_end_ms = 1000 * first.size // 16_000
    assert cuts[0].audio_ms < first_end_ms + 1500


def test_energy_vad_marks_speech_not_silence() -> None:
    vad = EnergyVad()
    t = np.arange(16_000) / 16_000
    tone = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    voiced = vad.push(np.concatenate([np.zeros(16_000, np.float32), tone, np.zeros(16_000, np.float32)]))
    assert voiced.size == 150
    assert not voiced[:50].any() and voiced[52:98].all() and not voiced[102:].any()


def test_trim_repetition() -> None:
    assert trim_repetition([1, 2, 3, 4, 5, 6, 4, 5, 6, 4, 5]) == [1, 2, 3, 4, 5, 6]
    assert trim_repetition([1, 1, 2, 2]) == [1, 1, 2, 2]  # short repeats are speech
    assert trim_repetition([1, 2, 3, 4]) == [1, 2, 3, 4]


def test_audio_files_of_any_rate_and_channels(tmp_path: Path) -> None:
    audio, _ = _utterance(1)
    stereo = np.stack([audio, audio], axis=1)
    resampled = to_mono_16k(np.repeat(stereo, 3, axis=0), 48_000)  # crude 48 kHz version
    assert abs(resampled.size - audio.size) <= 2
    path = tmp_path / "stereo44k.wav"
    sf.write(path, np.zeros((44_100, 2), np.float32), 44_100)
    assert read_audio(path).shape == (16_000,)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(InputError, match="cannot read audio"):
        read_audio(bad)
    with pytest.raises(InputError, match="not found"):
        read_audio(tmp_path / "missing.wav")


def test_options_are_validated() -> None:
    with pytest.raises(OptionsError, match="--segment-ms"):
        SpeechPolicyOptions(segment_ms=10)
    with pytest.raises(OptionsError, match="--policy"):
        SpeechPolicyOptions(name="wait-k")
    with pytest.raises(OptionsError, match="--encoder-window"):
        EncoderOptions(window="10s")


class _WholeDraftLsg:
    """LSG over audio as the paper states it, for comparison: draft every word that may be written
    plus one, score every draft position under both decoder states, commit the leading run."""

    def __init__(self, policy) -> None:
        self.policy = policy

    def step(self, window: np.ndarray, n_segments: int) -> list[int]:
        from lsg_edge.policy.bounds import words_required
        from lsg_edge.policy.decision import leading_run, log_softmax, write_test
        from lsg_edge.policy.words import cut_at_words

        p, o = self.policy, self.policy.options
        n_read = n_segments * o.words_per_segment
        out: list[int] = []
        while (allowed := words_allowed(n_read, p.n_words, o.low_bound)) > 0:
            p.full.set_audio(p.encode(window[: n_segments * o.segment_samples]))
            draft = p._draft(o.draft_tokens)
            starts = p.starts(draft.tokens)
            if starts[1:].sum() > allowed:  # keep up to the first token of word allowed + 1
                draft.tokens = draft.tokens[: int(np.flatnonzero(starts[1:])[allowed]) + 1]
                draft.logits = draft.logits[: len(draft.tokens)]
                starts = starts[: len(draft.tokens)]
            if not draft.tokens:
                break
            cur = log_softmax(draft.logits)
            n_base = min(p.n_words + 1, n_segments)
            base = cur
            if n_base < n_segments:
                p.baseline.set_audio(p.encode(window[: n_base * o.segment_samples]))
                prefix = p.prompt + p.committed
                positions = range(len(prefix) - 1, len(prefix) - 1 + len(draft.tokens))
                base = log_softmax(p.baseline.logits_at(prefix + draft.tokens, positions))
            n_accepted = leading_run(write_test(cur, base, o.delta, o.alpha, o.kl_direction))
            required = words_required(n_read, p.n_words, o.low_bound, o.top_bound)
            n_tokens, n_new = cut_at_words(starts, n_accepted, allowed, required)
            if n_new == 0:
                break
            out += p._take(draft.tokens[:n_tokens])
            if n_tokens < len(draft.tokens):
                break
        return out


@pytest.mark.parametrize("k", [0, 2])
def test_lsg_stopping_drafts_early_commits_what_scoring_whole_drafts_commits(engine: SpeechEngine, k: int) -> None:
    audio, _ = _utterance(k)
    options = SpeechPolicyOptions(delta=3.0, alpha=0.6)
    early = make_policy(engine, engine.prompt(None, "transcribe"), options)
    whole = _WholeDraftLsg(make_policy(engine, engine.prompt(None, "transcribe"), options))
    n_segments = audio.size // options.segment_samples
    for j in range(1, n_segments + 1):
        assert early.step(audio, j) == whole.step(audio, j), f"segment {j}"
    assert early.committed == whole.policy.committed and early.committed, "some words are committed while streaming"
