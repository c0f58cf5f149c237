"""Beam search over the ONNX Whisper decoder against ctranslate2's beam search on the same weights,
and the `--beam` option of a session."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lsg_edge.errors import OptionsError
from lsg_edge.policy.options import PolicyOptions
from lsg_edge.speech.engine import EncoderOptions, SpeechEngine
from lsg_edge.speech.features import N_FRAMES_30S, LogMel
from lsg_edge.speech.session import AsrSessionOptions

pytestmark = pytest.mark.speech


@pytest.fixture(scope="module")
def utterances(data_dir: Path) -> list[np.ndarray]:
    folder = data_dir / "librispeech-dev"
    with open(folder / "transcripts.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))[:3]
    return [sf.read(folder / row["audio_path"], dtype="float32")[0] for row in rows]


@pytest.fixture(scope="module")
def tiny_en() -> SpeechEngine:
    return SpeechEngine.load("tiny.en", encoder_options=EncoderOptions(window="30s"))


def test_beam_search_equals_ctranslate2(tiny_en: SpeechEngine, utterances: list[np.ndarray]) -> None:
    import ctranslate2

    from lsg_edge.speech.models import assemble_ct2

    model = ctranslate2.models.Whisper(str(assemble_ct2("tiny.en")), compute_type="float32", intra_threads=2)
    prompt = tiny_en.prompt(None, "transcribe")
    for audio in utterances:
        mel = LogMel(80)(audio)
        mel = np.pad(mel, ((0, 0), (0, N_FRAMES_30S - mel.shape[1])))
        theirs = model.generate(ctranslate2.StorageView.from_array(mel[None]), [prompt], beam_size=5)
        ours = tiny_en.beam_search(prompt, [], tiny_en.encode(audio), 5, 200)
        assert ours.ended
        assert ours.tokens == theirs[0].sequences_ids[0]


def test_one_beam_is_greedy(tiny_en: SpeechEngine, utterances: list[np.ndarray]) -> None:
    prompt = tiny_en.prompt(None, "transcribe")
    audio = utterances[0]
    ours = tiny_en.beam_search(prompt, [], tiny_en.encode(audio), 1, 200)
    assert tiny_en.vocab.text(ours.tokens).strip() == tiny_en.transcribe(audio)


def test_a_session_commits_the_window_end_with_beams(tiny_en: SpeechEngine, utterances: list[np.ndarray]) -> None:
    options = AsrSessionOptions(policy=PolicyOptions(name="offline"), beam_size=5)
    audio = utterances[1]
    with tiny_en.create_session(options) as session:
        text = "".join(c.separator + c.text for c in session.push(audio) + session.finish())
    prompt = tiny_en.prompt(None, "transcribe")
    best = tiny_en.beam_search(prompt, [], tiny_en.encode(audio), 5, 200)
    assert text.split() == tiny_en.vocab.text(best.tokens).split()


def test_beam_bounds() -> None:
    with pytest.raises(OptionsError, match="--beam"):
        AsrSessionOptions(beam_size=0)
