"""The page of `lsg-edge serve` in a real browser: headless Chromium (Debian's package, driven by
Playwright's Python API) with a fake microphone playing librispeech-dev utterances. Start, speak,
stop: the captions must be as good as `lsg-edge asr` on the same file (WER within 3 points). Typed
text is translated as it is typed, close to what `lsg-edge translate` gives for the same sentences.

Without Chromium or Playwright this test fails and says what to install; it is never skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lsg_edge.evaluation.scoring import word_error_rate
from lsg_edge.serve.app import ServeOptions, create_app
from lsg_edge.serve.streams import ServeEngines
from lsg_edge.speech.engine import SpeechEngine
from tests.helpers.markers import SPEECH, loads
from tests.helpers.serve import assert_released, read_utterance, running_server

_UTTERANCES = (0, 2, 3)  # 17.7 s of speech
_GAP_S = 1.0  # silence between utterances, and before the first (a fake device starts abruptly)
_TAIL_S = 2.0  # silence after the last, so that the last window ends at a pause as it would live
_MAX_WER_GAP = 3.0  # WER points the page may lose against `lsg-edge asr` (resampling twice, live timing)
_STREAM_TIMEOUT_MS = 600_000  # bound on the page sending the file and finishing (not a timing check)
# Where to keep the screenshot besides the test's own folder: the README's docs/serve.png is made so
# (and docs/serve-text.png, of typed text, by the typing test).
SCREENSHOT_ENV = "LSG_EDGE_SERVE_SCREENSHOT"


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("the browser test needs Chromium and it is not installed: apt-get install chromium "
                    "(.ci/run installs it where it runs as root)", pytrace=False)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail("the browser test needs Playwright's Python API: pip install -e '.[test]'", pytrace=False)
    return path


@pytest.fixture(scope="module")
@loads(SPEECH)
def speech_engine() -> SpeechEngine:
    # tiny.en, the faster built-in model: the page streams in real time on a machine that may be
    # shared, and the server must not fall minutes behind (the captions do not depend on how far).
    return SpeechEngine.load("tiny.en")


@pytest.fixture(scope="module")
def speech_file(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, float]:
    """The fake microphone's WAV (16-bit PCM, 16 kHz), its transcript and its duration in s."""
    rate = 16000
    parts, words = [np.zeros(int(_GAP_S * rate), np.float32)], []
    for k in _UTTERANCES:
        audio, transcript, _ = read_utterance(data_dir, k)
        parts += [audio, np.zeros(int(_GAP_S * rate), np.float32)]
        words.append(transcript)
    parts.append(np.zeros(int(_TAIL_S * rate), np.float32))
    audio = np.concatenate(parts)
    path = tmp_path_factory.mktemp("fake-mic") / "speech.wav"
    soundfile.write(path, audio, rate, subtype="PCM_16")
    return path, " ".join(words), audio.size / rate


def test_the_page_captions_a_microphone_as_well_as_the_cli(speech_engine, speech_file, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    wav, reference, duration_s = speech_file
    cli = subprocess.run([sys.executable, "-m", "lsg_edge.cli", "asr", str(wav), "--model", "tiny.en",
                          "--threads", "1"],
                         capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert cli.returncode == 0, cli.stderr
    cli_wer = word_error_rate([reference], [cli.stdout])

    engines = ServeEngines(speech_engine)
    with running_server(create_app(engines, ServeOptions(max_sessions=1))) as address, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=[
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}%noloop",
        ])
        try:
            page = browser.new_page(viewport={"width": 900, "height": 400})
            page.goto(f"http://{address}/")
            # The page learns from /config, fetched after load, that no translation model is loaded.
            page.wait_for_selector("#target[data-unavailable='1']", state="attached", timeout=10_000)
            assert page.is_disabled("#target") and page.is_disabled("#typed")
            # Remember whether the dimmed tentative tail ever showed words.
            page.evaluate("""() => {
                window.sawTentative = false;
                const tail = document.querySelector('#captions .tentative');
                new MutationObserver(() => { if (tail.textContent.trim()) window.sawTentative = true; })
                    .observe(tail, {childList: true, characterData: true, subtree: true});
            }""")
            page.click("#toggle")
            page.wait_for_function(f"() => Number(document.body.dataset.sentMs || 0) >= {duration_s * 1000:.0f}",
                                   timeout=_STREAM_TIMEOUT_MS, polling=200)
            assert page.get_attribute("body", "data-state") == "streaming"
            page.click("#toggle")
            page.wait_for_selector("body[data-state=done]", timeout=_STREAM_TIMEOUT_MS)
            captions = page.inner_text("#captions .committed")
            lag = page.inner_text("#lag")
            saw_tentative = page.evaluate("window.sawTentative")
            shot = tmp_path / "serve.png"
            page.screenshot(path=str(shot))
            if os.environ.get(SCREENSHOT_ENV):
                shutil.copyfile(shot, os.environ[SCREENSHOT_ENV])
        finally:
            browser.close()

    page_wer = word_error_rate([reference], [captions])
    print(f"\nbrowser WER {page_wer:.2f} %, lsg-edge asr WER {cli_wer:.2f} %, lag shown {lag}")
    assert page_wer <= cli_wer + _MAX_WER_GAP, (captions, cli.stdout)
    assert re.fullmatch(r"\d+\.\d s", lag), lag
    assert saw_tentative, "the page never showed a tentative tail"
    assert engines.sessions_open == 0 and engines.contexts_in_use == 0


_RESAMPLE_PAGE_JS = """async () => {
    const rate = 48000, n = rate;  // one second at a common device rate
    const context = new OfflineAudioContext(1, n, rate);
    await context.audioWorklet.addModule('/static/pcm-worklet.js');
    const buffer = context.createBuffer(1, n, rate);
    const x = buffer.getChannelData(0);
    for (let i = 0; i < n; i++) {
        x[i] = 0.4 * Math.sin(2 * Math.PI * 440 * i / rate) + 0.4 * Math.sin(2 * Math.PI * 12000 * i / rate);
    }
    const source = context.createBufferSource();
    source.buffer = buffer;
    const node = new AudioWorkletNode(context, 'pcm-resampler');
    const chunks = [];
    node.port.onmessage = (event) => chunks.push(Array.from(new Int16Array(event.data)));
    source.connect(node).connect(context.destination);
    source.start();
    await context.startRendering();
    await new Promise((resolve) => setTimeout(resolve, 500));  // the last posted chunks
    return chunks.flat();
}"""


def test_the_worklet_resamples_to_16_khz_without_aliasing(speech_engine) -> None:
    """48 kHz in: a 440 Hz tone comes out at 16 kHz with its amplitude; a 12 kHz tone, above the new
    Nyquist frequency, is filtered out instead of folding back to 4 kHz."""
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    with running_server(create_app(ServeEngines(speech_engine))) as address, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"http://{address}/")
            samples = np.array(page.evaluate(_RESAMPLE_PAGE_JS), np.float64) / 32768.0
        finally:
            browser.close()
    assert 14400 <= samples.size <= 16000  # whole 100 ms chunks of one second at 16 kHz
    steady = samples[800:14400]  # past the filter's start-up
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(steady.size))) * 2 / np.hanning(steady.size).sum()
    frequencies = np.fft.rfftfreq(steady.size, 1 / 16000)
    amplitude = {f: spectrum[np.abs(frequencies - f) < 20].max() for f in (440, 4000)}
    assert abs(amplitude[440] - 0.4) < 0.02, amplitude
    assert amplitude[4000] < 0.004, amplitude  # at least 40 dB below the tone it would alias from


def test_typed_text_is_translated_as_it_is_typed(engine, wmt_pairs) -> None:
    """Keystrokes into the page's text box: every word reaches the server, the translation shows while
    the text is typed, and it is close to `translate`'s (chrF ≥ 60 against it: the server catches up
    on words typed while it decodes, so the two may cut the same sentence into decisions differently)."""
    import io

    import sacrebleu
    from playwright.sync_api import sync_playwright

    from lsg_edge.text.source import read_words, split_words

    chromium = _chromium()
    sentences = [de for de, _ in wmt_pairs[:2]]
    with engine.create_session("de", "en") as session:
        text = "".join(s + "\n" for s in sentences).encode()
        expected = " ".join(c.text for c in session.translate_stream(read_words(io.BytesIO(text))) if c.text)
    engines = ServeEngines(None, engine)
    with running_server(create_app(engines, ServeOptions(max_sessions=1))) as address, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 400})
            page.goto(f"http://{address}/")
            page.wait_for_function("() => fetch('/config').then(r => r.ok)", timeout=10_000)
            page.select_option("#language", "de")
            page.select_option("#target", "en")
            page.evaluate("""() => {
                window.translationWhileTyping = false;
                const view = document.querySelector('#translation');
                new MutationObserver(() => {
                    if (document.body.dataset.state === 'typing' && view.innerText.trim()) window.translationWhileTyping = true;
                }).observe(view, {childList: true, characterData: true, subtree: true});
            }""")
            for sentence in sentences:
                page.type("#typed", sentence, delay=20)
                page.keyboard.press("Enter")
            assert page.get_attribute("body", "data-state") == "typing"
            page.keyboard.press("Escape")
            page.wait_for_selector("body[data-state=done]", timeout=_STREAM_TIMEOUT_MS)
            translation = page.inner_text("#translation .committed")
            source_shown = page.inner_text("#captions .committed")
            words_read = page.get_attribute("body", "data-words-read")
            while_typing = page.evaluate("window.translationWhileTyping")
            if os.environ.get(SCREENSHOT_ENV):  # docs/serve-text.png beside docs/serve.png
                shot = Path(os.environ[SCREENSHOT_ENV])
                page.screenshot(path=str(shot.with_name(shot.stem + "-text" + shot.suffix)), full_page=True)
        finally:
            browser.close()
    n_words = sum(len(split_words(s)) for s in sentences)
    assert words_read == str(n_words)
    assert source_shown.split() == " ".join(sentences).split()
    chrf = sacrebleu.sentence_chrf(translation, [expected]).score
    print(f"\npage: {translation}\ntranslate: {expected}\nchrF {chrf:.1f}")
    assert chrf >= 60, (translation, expected)
    assert while_typing, "no translation showed before the text ended"
    assert_released(engines)
