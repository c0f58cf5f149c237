"""Whisper → ONNX conversion, front end and offline decoding against independent references.

References on the same weights: faster-whisper's NumPy FeatureExtractor for the log-mel, the
ctranslate2 package for the encoder and greedy decoding, faster-whisper for offline WER.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf

from lsg_edge.convert.whisper_weights import read_ct2_model
from lsg_edge.errors import ModelError
from lsg_edge.speech.engine import EncoderOptions, SpeechEngine
from lsg_edge.speech.features import N_FRAMES_30S, LogMel
from lsg_edge.evaluation.scoring import normalize_for_wer, word_error_rate
from lsg_edge.speech.models import assemble_ct2, resolve_model

# Encoder hidden states: float32 graph vs CTranslate2 float32 on the same fp16-stored weights.
# Values reach ~±15; differences come from summation order only.
ENCODER_ATOL = 1e-3
N_WER_UTTERANCES = 5


pytestmark = pytest.mark.speech  # Whisper models, ctranslate2 and faster-whisper


@pytest.fixture(scope="module")
def utterances(data_dir: Path) -> Callable[[int], list[tuple[np.ndarray, str]]]:
    """The first n librispeech-dev utterances: (audio, transcript) each."""
    folder = data_dir / "librispeech-dev"

    def first(n: int) -> list[tuple[np.ndarray, str]]:
        with open(folder / "transcripts.tsv", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))[:n]
        out = []
        for row in rows:
            audio, rate = sf.read(folder / row["audio_path"], dtype="float32")
            assert rate == 16_000
            out.append((audio, row["transcript"]))
        return out

    return first


@pytest.fixture(scope="module")
def tiny_engine() -> SpeechEngine:
    return SpeechEngine.load("tiny.en", encoder_options=EncoderOptions(window="30s"))


def test_log_mel_matches_faster_whisper(utterances) -> None:
    from faster_whisper.feature_extractor import FeatureExtractor

    audio, _ = utterances(1)[0]
    for n_mels in (80, 128):
        reference = FeatureExtractor(feature_size=n_mels)(audio)
        ours = LogMel(n_mels)(audio)
        assert ours.shape == (n_mels, audio.size // 160)
        np.testing.assert_allclose(ours, reference[:, : ours.shape[1]], atol=1e-5)


def test_log_mel_of_short_and_empty_audio() -> None:
    mel = LogMel(80)
    assert mel(np.zeros(0, np.float32)).shape == (80, 0)
    assert mel(np.zeros(1600, np.float32)).shape == (80, 10)


def test_encoder_matches_ctranslate2(utterances, tiny_engine: SpeechEngine) -> None:
    import ctranslate2

    audio, _ = utterances(1)[0]
    mel = LogMel(80)(audio)
    mel = np.pad(mel, ((0, 0), (0, N_FRAMES_30S - mel.shape[1])))
    ours = tiny_engine.runtime.encoder_output(mel)
    model = ctranslate2.models.Whisper(str(assemble_ct2("tiny.en")), compute_type="float32", intra_threads=2)
    reference = np.array(model.encode(ctranslate2.StorageView.from_array(mel[None])))
    assert ours.shape == reference.shape == (1, 1500, 384)
    np.testing.assert_allclose(ours, reference, atol=ENCODER_ATOL)


def test_greedy_tokens_match_ctranslate2(utterances, tiny_engine: SpeechEngine) -> None:
    import ctranslate2

    model = ctranslate2.models.Whisper(str(assemble_ct2("tiny.en")), compute_type="float32", intra_threads=2)
    prompt = tiny_engine.prompt(None, "transcribe")
    for audio, _ in utterances(2):
        mel = LogMel(80)(audio)
        mel = np.pad(mel, ((0, 0), (0, N_FRAMES_30S - mel.shape[1])))
        result = model.generate(ctranslate2.StorageView.from_array(mel[None]), [prompt], beam_size=1)
        assert tiny_engine.transcribe(audio) == tiny_engine.vocab.text(result[0].sequences_ids[0]).strip()


def test_decoder_cache_equals_fresh_evaluation(utterances, tiny_engine: SpeechEngine) -> None:
    audio, _ = utterances(1)[0]
    prompt = tiny_engine.prompt(None, "transcribe")
    encoded = tiny_engine.encode(audio[:32_000])
    cached, fresh = tiny_engine.new_context(prompt), tiny_engine.new_context(prompt, reuse_cache=False)
    cached.set_audio(encoded)
    fresh.set_audio(encoded)
    text = [int(t) for t in (2514, 910, 17548, 11, 407)]
    for tokens, positions in ((prompt + text, [1, 3, 4]), (prompt + text[:2] + [257, 1110], [2, 3, 4, 5]),
                              (prompt + text, [6, 1])):
        np.testing.assert_allclose(cached.logits_at(tokens, positions), fresh.logits_at(tokens, positions),
                                   atol=1e-4)


def test_offline_wer_matches_faster_whisper(utterances) -> None:
    from faster_whisper import WhisperModel

    engine = SpeechEngine.load("base", encoder_options=EncoderOptions(window="30s"))
    reference_model = WhisperModel(str(assemble_ct2("base")), device="cpu", compute_type="float32", cpu_threads=2)
    pairs = utterances(N_WER_UTTERANCES)
    ours, theirs = [], []
    for audio, _ in pairs:
        ours.append(engine.transcribe(audio, language="en"))
        segments, _ = reference_model.transcribe(audio, language="en", beam_size=1, temperature=0.0,
                                                 without_timestamps=True, condition_on_previous_text=False)
        theirs.append(" ".join(s.text for s in segments))
    references = [text for _, text in pairs]
    assert abs(word_error_rate(references, ours) - word_error_rate(references, theirs)) <= 0.5


def test_normalize_text() -> None:
    assert normalize_for_wer("  Don't, STOP!  now-2 ") == "don't stop now 2"


def test_corrupt_model_is_a_model_error(tmp_path: Path) -> None:
    source = assemble_ct2("tiny.en") / "model.bin"
    truncated = tmp_path / "model.bin"
    with open(source, "rb") as f:
        truncated.write_bytes(f.read(1_000_000))
    with pytest.raises(ModelError, match="corrupt or truncated"):
        read_ct2_model(truncated)
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "model.bin").write_bytes(b"\x06\x00\x00\x00nonsense")
    with pytest.raises(ModelError):
        resolve_model(garbage)


def test_corrupt_onnx_is_a_model_error(tmp_path: Path) -> None:
    onnx_dir = resolve_model("tiny.en")
    for name in ("vocabulary.txt", "config.json"):
        shutil.copyfile(onnx_dir / name, tmp_path / name)
    (tmp_path / "encoder.onnx").write_bytes(b"not a graph")
    (tmp_path / "decoder.onnx").write_bytes(b"not a graph")
    with pytest.raises(ModelError, match="cannot load"):
        SpeechEngine(tmp_path)


def test_safetensors_checkpoint_reads_like_ctranslate2(tmp_path: Path) -> None:
    """A Hugging Face-named safetensors file of the same weights maps onto the same tensors."""
    from safetensors.numpy import save_file

    from lsg_edge.convert.whisper_weights import _hf_table, read_safetensors

    ct2 = read_ct2_model(assemble_ct2("tiny.en") / "model.bin")
    dims = ct2.dims
    hf = {}
    for name, source in _hf_table(dims.n_encoder_layers, dims.n_decoder_layers).items():
        if source.endswith("k_proj.bias"):
            continue  # Hugging Face Whisper has no key bias
        hf["model." + source] = ct2.tensors[name].astype(np.float16)
    save_file(hf, str(tmp_path / "model.safetensors"))
    ours = read_safetensors(tmp_path / "model.safetensors")
    assert ours.dims == dims
    assert set(ours.tensors) == set(ct2.tensors)
    for name, tensor in ct2.tensors.items():
        np.testing.assert_array_equal(ours.tensors[name], tensor, err_msg=name)
