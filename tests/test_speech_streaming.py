"""LSG over audio: invariants of the commits, silence handling, loop guards, audio input."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf

from lsg_edge.errors import InputError, OptionsError
from lsg_edge.policy.bounds import words_allowed
from lsg_edge.speech.audio_io import file_blocks, read_audio, to_mono_16k
from lsg_edge.speech.engine import EncoderOptions, SpeechEngine
from lsg_edge.speech.loops import trim_repetition
from lsg_edge.policy.options import SPEECH_POLICY_DEFAULTS
from lsg_edge.policy.strategies import make_policy
from lsg_edge.speech.session import AsrSessionOptions
from lsg_edge.policy.drafting import Draft
from lsg_edge.speech.window import WindowDecoder, hold_back_edge
from lsg_edge.speech.vad import EnergyVad
from tests.helpers.markers import SPEECH, loads

@pytest.fixture(scope="module")
def utterance(data_dir: Path) -> Callable[[int], tuple[np.ndarray, str]]:
    """The k-th librispeech-dev utterance: (audio, transcript)."""
    folder = data_dir / "librispeech-dev"
    with open(folder / "transcripts.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return lambda k: (read_audio(folder / rows[k]["audio_path"]), rows[k]["transcript"])


@pytest.fixture(scope="module")
@loads(SPEECH)
def engine() -> SpeechEngine:
    return SpeechEngine.load("tiny.en", encoder_options=EncoderOptions(window="tight"))


SEGMENT = AsrSessionOptions().segment_samples


def _stream(engine: SpeechEngine, audio: np.ndarray, **policy) -> list:
    with engine.create_session(AsrSessionOptions(policy=replace(SPEECH_POLICY_DEFAULTS, **policy))) as session:
        commits = []
        for block in file_blocks(audio):
            commits += session.push(block)
        return commits + session.finish()


def _window(engine: SpeechEngine, **policy):
    """A window decoder and its policy, stepped by hand segment by segment."""
    options = replace(SPEECH_POLICY_DEFAULTS, **policy)
    decoder = WindowDecoder(engine, engine.prompt(None, "transcribe"), options, SEGMENT)
    return decoder, make_policy(options), options


def test_lsg_commits_whole_words_within_the_range_constraint(utterance, engine: SpeechEngine) -> None:
    audio, reference = utterance(0)
    decoder, policy, options = _window(engine, delta=0.0, alpha=0.0, low_bound=2, words_per_element=1)  # all pass
    committed_text = ""
    n_segments = audio.size // SEGMENT
    for j in range(1, n_segments + 1):
        writes = decoder.step(policy, audio, j)
        assert all(w.cause == "confidence" for w in writes)  # every position passes the tests
        tokens = [t for w in writes for t in w.tokens]
        # Bounded by L: never more words than j − L + 1 segments allow.
        assert decoder.n_words <= j - options.low_bound + 1
        if tokens:
            text = engine.vocab.text(tokens)
            assert text[0] == " ", "a commit starts at a word boundary"
            committed_text += text
        # With every position passing, LSG writes all the bound allows (the draft has words left).
        assert words_allowed(j, decoder.n_words, options.low_bound) <= 1
    final = committed_text + engine.vocab.text(decoder.finish(audio).tokens)
    assert engine.vocab.text(decoder.committed) == final
    assert len(final.split()) >= len(reference.split()) - 3


def test_hold_back_edge_drops_the_last_words_of_an_ended_draft() -> None:
    tokens = [10, 11, 12, 13, 14]  # three words: [10, 11] [12] [13, 14]
    starts = np.array([True, False, True, True, False])
    # The first token of the first held word stays: it marks where the last offered word ends.
    assert hold_back_edge(Draft(tokens, ended=True), starts, 2) == Draft([10, 11, 12], ended=False)
    assert hold_back_edge(Draft(tokens, ended=True), starts, 1) == Draft([10, 11, 12, 13], ended=False)
    assert hold_back_edge(Draft(tokens, ended=True), starts, 4) == Draft([10], ended=False)
    # A draft that stopped before the end of the audio has no edge in it.
    assert hold_back_edge(Draft(tokens, ended=False), starts, 2) == Draft(tokens, ended=False)


@pytest.mark.parametrize("edge_words", [1, 3])
def test_words_at_the_edge_of_the_audio_wait_for_more_audio(utterance, engine: SpeechEngine, edge_words: int) -> None:
    audio, _ = utterance(0)
    # Every position passes and the bounds allow every word: only the edge holds words back.
    options = replace(SPEECH_POLICY_DEFAULTS, delta=0.0, alpha=0.0, words_per_element=8, draft_tokens=64)
    decoder = WindowDecoder(engine, engine.prompt(None, "transcribe"), options, SEGMENT, edge_words)
    policy, checked = make_policy(options), 0
    for j in range(1, audio.size // SEGMENT + 1):
        written = decoder.step(policy, audio, j)
        # What Whisper now hears after the committed words: after a write, exactly the held words.
        remainder = decoder.draft(64)
        if written and remainder.ended:
            assert int(decoder.starts(remainder.tokens).sum()) == edge_words, f"segment {j}"
            checked += 1
    assert checked >= 5


def test_lsg_reads_when_nothing_passes_until_forced(utterance, engine: SpeechEngine) -> None:
    audio, _ = utterance(0)
    decoder, policy, options = _window(engine, delta=1e9, alpha=1.0, low_bound=1, top_bound=2, words_per_element=1)
    for j in range(1, 6):
        decoder.step(policy, audio, j)
        # Only the upper bound forces writes: exactly j − L − U + 1 words, never more.
        assert decoder.n_words == max(0, j - options.low_bound - options.top_bound + 1)


def test_streamed_commits_are_final_and_ordered(utterance, engine: SpeechEngine) -> None:
    audio, reference = utterance(2)
    commits = _stream(engine, audio)
    assert commits, "speech produced no words"
    times = [c.source_read for c in commits]
    assert times == sorted(times) and times[-1] <= 1000 * audio.size // 16_000 + 1
    assert commits[-1].sentence_end
    assert all(c.n_words == len(c.text.split()) > 0 and c.text == c.text.strip() for c in commits)
    text = "".join(c.separator + c.text for c in commits)
    # A commit that continues the previous one's last word ("fact" then ",") joins it unspaced.
    assert " ," not in text and "  " not in text
    assert "confession" in text.lower() and "bishop" in text.lower()


def test_local_agreement_and_offline_policies_run(utterance, engine: SpeechEngine) -> None:
    audio, _ = utterance(1)
    for name in ("local-agreement", "offline", "wait-k"):
        text = "".join(c.separator + c.text for c in _stream(engine, audio, name=name)).lower()
        assert "gloom" in text


def test_a_backlog_pushed_at_once_is_decided_on_once(utterance, engine: SpeechEngine) -> None:
    # A consumer that fell behind pushes everything that piled up; the session decides on the last
    # segment only (one decision's work instead of one per segment), and the captions hold up.
    audio, _ = utterance(2)  # "in fact the ringleader john rex gave me his confession …", ~10 s
    blockwise = _stream(engine, audio)
    with engine.create_session(AsrSessionOptions()) as session:
        pushed = session.push(audio)
        finished = session.finish()
    assert len({c.source_read for c in blockwise if not c.sentence_end}) > 3
    assert len({c.source_read for c in pushed}) <= 1
    text = " ".join(c.text for c in pushed + finished).lower()
    assert "confession" in text and "bishop" in text


def test_blocks_of_one_segment_or_less_decide_as_before(utterance, engine: SpeechEngine) -> None:
    # At most one segment end per push: every segment is decided on, so block size does not matter.
    audio, _ = utterance(1)

    def commits(block_samples: int) -> list[tuple[str, int]]:
        with engine.create_session(AsrSessionOptions()) as session:
            out = [c for k in range(0, audio.size, block_samples) for c in session.push(audio[k : k + block_samples])]
            return [(c.text, c.source_read) for c in out + session.finish()]

    assert commits(1600) == commits(SEGMENT)


def test_silence_reaches_no_decoder(engine: SpeechEngine) -> None:
    calls = engine.runtime.n_encoder_calls, engine.runtime.n_decoder_calls
    rng = np.random.default_rng(0)
    quiet = (rng.standard_normal(16_000 * 4) * 1e-4).astype(np.float32)
    assert _stream(engine, quiet) == []
    assert (engine.runtime.n_encoder_calls, engine.runtime.n_decoder_calls) == calls


def test_pause_cuts_the_window_and_commits_everything(utterance, engine: SpeechEngine) -> None:
    first, _ = utterance(1)
    second, _ = utterance(2)
    audio = np.concatenate([first, np.zeros(16_000 * 2, np.float32), second])
    commits = _stream(engine, audio)
    cuts = [c for c in commits if c.sentence_end]
    assert len(cuts) == 2
    # Everything of the first sentence is out before the second one starts.
    first_end_ms = 1000 * first.size // 16_000
    assert cuts[0].source_read < first_end_ms + 1500


def test_committed_text_is_carried_into_the_next_windows_prompt(utterance, engine: SpeechEngine) -> None:
    first, _ = utterance(1)
    second, _ = utterance(2)
    audio = np.concatenate([first, np.zeros(16_000 * 2, np.float32), second])
    with engine.create_session(AsrSessionOptions(carry_tokens=32)) as session:
        commits = [c for block in file_blocks(audio) for c in session.push(block)] + session.finish()
        carried = session._decoder.prompt  # the prompt the next window would start with
    task = engine.prompt(None, "transcribe")
    assert carried[-len(task):] == task and carried[0] == engine.vocab._special("<|startofprev|>")
    assert 1 < len(carried) - len(task) <= 1 + 32
    assert "bishop" in engine.vocab.text(carried[1:-len(task)]).lower()
    text = "".join(c.separator + c.text for c in commits).lower()
    assert "gloom" in text and "bishop" in text


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


def test_audio_files_of_any_rate_and_channels(utterance, tmp_path: Path) -> None:
    audio, _ = utterance(1)
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
        AsrSessionOptions(segment_ms=10)
    with pytest.raises(OptionsError, match="--edge-words"):
        AsrSessionOptions(edge_words=0)
    with pytest.raises(OptionsError, match="--policy"):
        replace(SPEECH_POLICY_DEFAULTS, name="wait-5")
    with pytest.raises(OptionsError, match="--encoder-window"):
        EncoderOptions(window="10s")


class _WholeDraftLsg:
    """LSG over audio as the paper states it, for comparison: draft every word that may be written
    plus one, score every draft position under both decoder states, commit the leading run."""

    def __init__(self, decoder: WindowDecoder, options) -> None:
        self.decoder = decoder
        self.options = options

    def step(self, window: np.ndarray, n_segments: int) -> list[int]:
        from lsg_edge.policy.bounds import words_required
        from lsg_edge.policy.decision import leading_run, log_softmax, write_test
        from lsg_edge.policy.words import cut_at_words

        d, o = self.decoder, self.options
        n_read = n_segments * o.words_per_element
        out: list[int] = []
        while (allowed := words_allowed(n_read, d.n_words, o.low_bound)) > 0:
            d.full.set_audio(d.encode(window[: n_segments * SEGMENT]))
            tokens = d.draft(o.draft_tokens).tokens
            starts = d.starts(tokens)
            if starts[1:].sum() > allowed:  # keep up to the first token of word allowed + 1
                tokens = tokens[: int(np.flatnonzero(starts[1:])[allowed]) + 1]
                starts = starts[: len(tokens)]
            if not tokens:
                break
            prefix = d.prompt + d.committed
            positions = range(len(prefix) - 1, len(prefix) - 1 + len(tokens))
            cur = log_softmax(d.full.logits_at(prefix + tokens, positions))
            n_base = min(d.n_words + 1, n_segments)
            base = cur
            if n_base < n_segments:
                d.baseline.set_audio(d.encode(window[: n_base * SEGMENT]))
                base = log_softmax(d.baseline.logits_at(prefix + tokens, positions))
            n_accepted = leading_run(write_test(cur, base, o.delta, o.alpha, o.kl_direction))
            required = words_required(n_read, d.n_words, o.low_bound, o.top_bound)
            n_tokens, _ = cut_at_words(starts, n_accepted, allowed, required)
            if n_tokens == 0:
                break
            out += d.take(tokens[:n_tokens])
            if n_tokens < len(tokens):
                break
        return out


@pytest.mark.parametrize("k", [0, 2])
def test_lsg_stopping_drafts_early_commits_what_scoring_whole_drafts_commits(utterance, engine: SpeechEngine, k: int) -> None:
    audio, _ = utterance(k)
    early, policy, options = _window(engine, delta=3.0, alpha=0.6)
    whole = _WholeDraftLsg(_window(engine, delta=3.0, alpha=0.6)[0], options)
    n_segments = audio.size // SEGMENT
    for j in range(1, n_segments + 1):
        written = [t for w in early.step(policy, audio, j) for t in w.tokens]
        assert written == whole.step(audio, j), f"segment {j}"
    assert early.committed == whole.decoder.committed and early.committed, "some words are committed while streaming"
