"""AlignAtt: the decision rule on planted attention, and the decoder's exported alignment attention
against a NumPy forward pass of the same heads on the real tiny.en weights."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lsg_edge.errors import OptionsError
from lsg_edge.policy.alignatt import AlignAttPolicy, heard_run, most_attended_frames
from lsg_edge.policy.drafting import Draft
from lsg_edge.policy.options import PolicyOptions
from lsg_edge.policy.strategies import Read, Write, make_policy
from lsg_edge.speech.alignment_heads import KNOWN_ALIGNMENT_HEADS, alignment_heads

N_FRAMES = 100  # encoded frames of the planted views (heard audio + padding)


N_PROMPT_ROWS = 3  # rows before the draft's (a prompt), attending evenly


class PlantedView:
    """A speech decision view whose draft and attention are given: the row predicting token t puts
    its attention on a 5-frame bump around `frames[t]` in the first head and on frame 0 (a sink
    every row shares) in the second."""

    n_read = 1
    n_committed_words = 0
    at_target_start = True
    stop_ends_word = False

    def __init__(self, pieces: list[str], frames: list[int], n_heard_frames: int, ended: bool = False) -> None:
        self._pieces = pieces
        self._frames = frames
        self.n_heard_frames = n_heard_frames
        self._ended = ended
        self.n_drafted = 0

    def draft(self, max_words, should_stop=None) -> Draft:
        tokens: list[int] = []
        for token in range(len(self._pieces)):
            tokens.append(token)
            self.n_drafted += 1
            if should_stop is not None and should_stop(tokens, np.zeros(4, np.float32)):
                return Draft(tokens, False)
        return Draft(tokens, self._ended)

    def draft_attention(self, tokens: list[int]) -> np.ndarray:
        out = np.full((N_PROMPT_ROWS + len(tokens), 2, N_FRAMES), 1.0 / N_FRAMES, np.float32)
        for row, token in enumerate(tokens, N_PROMPT_ROWS):
            frame = self._frames[token]
            out[row, 0] = 0.0
            out[row, 0, max(0, frame - 2): frame + 3] = 0.2
            out[row, 1] = 0.0
            out[row, 1, 0] = 1.0
        return out

    def pieces(self, tokens: list[int]) -> list[str]:
        return [self._pieces[t] for t in tokens]


def _decide(pieces, frames, n_heard=50, f=10, ended=False):
    view = PlantedView(pieces, frames, n_heard, ended)
    return AlignAttPolicy(PolicyOptions(name="alignatt", frames=f)).decide(view), view


def test_words_heard_long_enough_ago_are_written_but_not_the_open_last_word() -> None:
    decision, _ = _decide([" the", " cat", " sat"], [5, 10, 15])
    assert decision == Write(2)  # " sat" may continue: no boundary follows it


def test_a_token_attending_the_last_f_frames_stops_the_write_there() -> None:
    decision, view = _decide([" the", " cat", " sat", " down"], [5, 45, 15, 20])
    assert decision == Write(1)
    assert view.n_drafted == 2  # drafting stopped at the failing token


def test_the_threshold_is_the_last_f_heard_frames() -> None:
    # A flat bump's median-filtered argmax is its first frames: bumps clear of the limit (40) by 2.
    assert _decide([" a", " b", " c"], [5, 37, 6], n_heard=50, f=10)[0] == Write(2)  # 37 < 50 - 10
    assert _decide([" a", " b", " c"], [5, 43, 6], n_heard=50, f=10)[0] == Write(1)  # 43 is in the last 10
    assert _decide([" a", " b", " c"], [5, 43, 6], n_heard=50, f=5)[0] == Write(2)


def test_attention_into_the_padding_is_not_heard() -> None:
    assert _decide([" a", " b", " c"], [5, 70, 6], n_heard=50, f=1)[0] == Write(1)


def test_a_word_is_written_whole_or_not_at_all() -> None:
    assert _decide([" un", "heard", " of", " it"], [5, 45, 6, 7])[0] == Read()
    assert _decide([" first", "ly", " un", "heard"], [5, 6, 7, 45])[0] == Write(2)


def test_first_token_unheard_reads() -> None:
    decision, view = _decide([" the", " cat"], [48, 10])
    assert decision == Read() and view.n_drafted == 1


def test_most_attended_frames_ignore_a_sink_all_rows_share() -> None:
    rng = np.random.default_rng(0)
    n_rows, n_frames = 6, 70
    attention = rng.uniform(0.0, 1e-4, (n_rows, 2, n_frames))
    attention[:, :, 3] += 1.0  # both heads park most weight on frame 3 in every row
    for row in range(n_rows):  # and follow the audio a little: row r around frame 10 r + 5
        attention[row, :, 10 * row + 3: 10 * row + 8] += 0.1
    attention /= attention.sum(-1, keepdims=True)
    assert (attention.mean(1).argmax(-1) == 3).all()  # the raw argmax sees only the sink
    # The median-filtered argmax lands inside each row's 5-frame bump.
    found = most_attended_frames(attention)
    assert np.abs(found - (10 * np.arange(n_rows) + 5)).max() <= 2
    assert most_attended_frames(attention, [2, 5]).tolist() == found[[2, 5]].tolist()
    assert heard_run(np.array([1, 2, 9, 3]), n_heard_frames=10, f=2) == 2


def test_a_text_view_is_refused_with_a_clear_error() -> None:
    class TextView:
        n_read, n_committed_words, at_target_start, stop_ends_word = 1, 0, True, True

    with pytest.raises(OptionsError, match="alignatt"):
        make_policy(PolicyOptions(name="alignatt")).decide(TextView())


def test_frames_must_be_non_negative() -> None:
    with pytest.raises(OptionsError, match="--frames"):
        PolicyOptions(name="alignatt", frames=-1)


def test_known_alignment_heads_and_fallback(tmp_path: Path) -> None:
    assert alignment_heads(6, 8, 51865) == list(KNOWN_ALIGNMENT_HEADS[(6, 8, 51865)])
    assert len(alignment_heads(4, 6, 51864)) == 8
    assert alignment_heads(2, 3, 100) == [(1, 0), (1, 1), (1, 2)]  # upper half of the layers
    (tmp_path / "config.json").write_text(json.dumps({"alignment_heads": [[1, 2], [0, 1]]}))
    assert alignment_heads(2, 3, 100, tmp_path) == [(0, 1), (1, 2)]


# --- the exported attention against NumPy ---------------------------------------------------------


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * gamma + beta


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


_erf = np.vectorize(math.erf)


def _reference_cross_attention(t: dict, n_layers: int, n_heads: int, tokens: list[int],
                               encoded: np.ndarray) -> np.ndarray:
    """Whisper's decoder in float64 NumPy over `encoded` [n_audio, d]: every layer's
    cross-attention weights [n_layers, n_heads, n_tokens, n_audio]."""
    f64 = {k: np.asarray(v, np.float64) for k, v in t.items()}

    def lin(x, p):
        return x @ f64[f"{p}.weight"].T + f64[f"{p}.bias"]

    def split(x):  # [n, d] -> [h, n, dh]
        return x.reshape(x.shape[0], n_heads, -1).transpose(1, 0, 2)

    n = len(tokens)
    x = f64["decoder.tokens"][tokens] + f64["decoder.positions"][:n]
    enc = np.asarray(encoded, np.float64)
    causal = np.triu(np.full((n, n), -np.inf), 1)
    out = []
    for i in range(n_layers):
        p = f"decoder.layers.{i}"
        h = _layer_norm(x, f64[f"{p}.attn_ln.weight"], f64[f"{p}.attn_ln.bias"])
        q, k, v = (split(lin(h, f"{p}.attn.{m}")) for m in "qkv")
        dh = q.shape[-1]
        a = _softmax(q @ k.transpose(0, 2, 1) / math.sqrt(dh) + causal) @ v
        x = x + lin(a.transpose(1, 0, 2).reshape(n, -1), f"{p}.attn.o")
        h = _layer_norm(x, f64[f"{p}.cross_attn_ln.weight"], f64[f"{p}.cross_attn_ln.bias"])
        q = split(lin(h, f"{p}.cross_attn.q"))
        k, v = split(lin(enc, f"{p}.cross_attn.k")), split(lin(enc, f"{p}.cross_attn.v"))
        weights = _softmax(q @ k.transpose(0, 2, 1) / math.sqrt(dh))
        out.append(weights)
        x = x + lin((weights @ v).transpose(1, 0, 2).reshape(n, -1), f"{p}.cross_attn.o")
        h = _layer_norm(x, f64[f"{p}.mlp_ln.weight"], f64[f"{p}.mlp_ln.bias"])
        h = lin(h, f"{p}.mlp.fc1")
        x = x + lin(0.5 * h * (1.0 + _erf(h / math.sqrt(2.0))), f"{p}.mlp.fc2")
    return np.stack(out)


def _greedy(engine, prompt: list[int], audio: np.ndarray, n_tokens: int) -> list[int]:
    """The first `n_tokens` tokens Whisper writes for `audio`."""
    from lsg_edge.policy.drafting import greedy_draft

    context = engine.new_context(prompt)
    context.set_audio(engine.encode(audio))
    tokens = greedy_draft(context, prompt, n_tokens, engine.vocab.is_end_of_generation).tokens
    assert len(tokens) == n_tokens
    return tokens


@pytest.fixture(scope="module")
def tiny_en():
    from lsg_edge.speech.engine import SpeechEngine

    return SpeechEngine.load("tiny.en")


@pytest.fixture(scope="module")
def first_utterance(data_dir: Path) -> np.ndarray:
    folder = data_dir / "librispeech-dev"
    with open(folder / "transcripts.tsv", newline="") as f:
        row = next(csv.DictReader(f, delimiter="\t"))
    audio, rate = sf.read(folder / row["audio_path"], dtype="float32")
    assert rate == 16_000
    return audio


@pytest.mark.speech
def test_exported_attention_equals_numpy_reference(tiny_en, first_utterance: np.ndarray) -> None:
    import onnx

    from lsg_edge.convert.whisper_weights import read_ct2_model
    from lsg_edge.speech.models import assemble_ct2

    weights = read_ct2_model(assemble_ct2("tiny.en") / "model.bin")
    dims = weights.dims
    heads = alignment_heads(dims.n_decoder_layers, dims.n_heads, dims.n_vocab)
    metadata = {p.key: p.value for p in onnx.load(str(tiny_en.model_dir / "decoder.onnx"),
                                                  load_external_data=False).metadata_props}
    assert json.loads(metadata["whisper.alignment_heads"]) == [list(h) for h in heads]

    audio = first_utterance[:48_000]
    mel = tiny_en.log_mel(audio)
    mel = np.pad(mel, ((0, 0), (0, mel.shape[1] % 2)))
    encoded = tiny_en.runtime.encoder_output(mel)[0]
    prompt = tiny_en.prompt(None, "transcribe")
    tokens = prompt + _greedy(tiny_en, prompt, audio, 6)
    cache = tiny_en.runtime.empty_cache()
    step = tiny_en.runtime.decode_step(tokens, *cache, tiny_en.runtime.encode(mel))
    assert step.attention.shape == (len(tokens), len(heads), encoded.shape[0])
    reference = _reference_cross_attention(weights.tensors, dims.n_decoder_layers, dims.n_heads, tokens, encoded)
    expected = np.stack([reference[layer, head] for layer, head in heads], axis=1)  # [tokens, heads, audio]
    np.testing.assert_allclose(step.attention, expected, atol=2e-4)
    # And the most attended frames move forward through the sentence, as alignment heads do.
    frames = most_attended_frames(step.attention, np.arange(len(prompt) - 1, len(tokens) - 1))
    assert (np.diff(frames) >= 0).all() and frames[-1] > frames[0]


@pytest.mark.speech
def test_cached_attention_equals_fresh(tiny_en, first_utterance: np.ndarray) -> None:
    prompt = tiny_en.prompt(None, "transcribe")
    encoded = tiny_en.encode(first_utterance[:32_000])
    cached, fresh = tiny_en.new_context(prompt), tiny_en.new_context(prompt, reuse_cache=False)
    cached.set_audio(encoded)
    fresh.set_audio(encoded)
    text = _greedy(tiny_en, prompt, first_utterance[:32_000], 4)
    cached.logits_at(prompt + text[:2], [len(prompt)])  # a shorter prefix first: the rest extends the cache
    positions = list(range(len(prompt) + len(text)))
    np.testing.assert_allclose(cached.attention_at(prompt + text, positions),
                               fresh.attention_at(prompt + text, positions), atol=1e-5)
