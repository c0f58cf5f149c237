"""`lsg-edge serve` with a translation model: a stream that names a target gets the captions and
their translation, the same as the in-process speech→translation session, drafts included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lsg_edge.cascade import SpeechTranslator
from lsg_edge.client import ServerError, stream_audio, transcript
from lsg_edge.serve.app import ServeOptions, create_app
from lsg_edge.serve.streams import ServeEngines
from lsg_edge.speech.engine import SpeechEngine
from lsg_edge.speech.session import AsrSessionOptions
from tests.helpers.markers import SPEECH, loads
from tests.helpers.serve import assert_released, read_utterance, running_server

_BLOCK = 3200  # 200 ms, as the Python client sends


@pytest.fixture(scope="module")
@loads(SPEECH)
def speech_engine() -> SpeechEngine:
    return SpeechEngine.load("tiny.en")


@pytest.fixture(scope="module")
def translating(speech_engine: SpeechEngine, engine):
    engines = ServeEngines(speech_engine, engine)
    with running_server(create_app(engines, ServeOptions(max_sessions=2))) as address:
        yield address, engines


def _pcm(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768.0).astype(np.int16).astype(np.float32) / 32768.0


def test_a_target_gets_captions_and_their_translation(translating, speech_engine, engine, data_dir: Path) -> None:
    address, engines = translating
    audio = _pcm(read_utterance(data_dir, 0)[0])
    blocks = [audio[i : i + _BLOCK] for i in range(0, audio.size, _BLOCK)]
    messages = stream_audio(f"ws://{address}/ws", blocks, language="en", target="de", catch_up=False)
    assert messages[-1].message["type"] == "done"
    with SpeechTranslator(speech_engine, engine).create_session(
            "en", "de", asr_options=AsrSessionOptions(language="en")) as session:
        commits = [c for block in blocks for c in session.push(block)] + session.finish()
    expected = [{"type": "commit", "stream": c.stream, "text": c.text, "separator": c.separator,
                 "sentence_end": c.sentence_end} for c in commits]
    assert transcript(messages, "target").strip(), "no translation came back"
    assert transcript(messages, "source") == transcript(expected, "source")
    assert transcript(messages, "target") == transcript(expected, "target")
    drafts = {m.message["stream"] for m in messages if m.message["type"] == "draft"}
    assert drafts == {"source", "target"}
    assert_released(engines)


def test_an_untranslatable_pair_is_refused_in_one_message(translating) -> None:
    address, _ = translating
    with pytest.raises(ServerError, match="'xx' is not a supported target language"):
        stream_audio(f"ws://{address}/ws", [], language="en", target="xx")
