"""Input a model cannot translate and settings it cannot act on: punctuation alone is written through
(never handed to the model to invent from), terminal escape sequences go whole, and a context or a
range constraint that cannot work is one line naming the flag."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.helpers.cli import CLI, one_line_error
from tests.helpers.tiny_models import make_hf_weights, tiny_spec, write_tiny_gguf
from tests.helpers.toy_model import ToyContext, ToyPrompt, ToyVocabulary, toy_pool

from lsg_edge.errors import OptionsError
from lsg_edge.policy.options import PolicyOptions
from lsg_edge.text.escapes import EscapeStripper, strip_escapes
from lsg_edge.text.limits import MIN_WINDOW_TOKENS, check_session_limits
from lsg_edge.text.session import SessionOptions, TranslationSession
from lsg_edge.text.source import InvalidSourceBytes, read_words

PUNCTUATION = "... !!! ??? ,,, ;;; ---"


def _session(policy=PolicyOptions(name="wait-k", k=1), n_ctx_tokens=4096, prompt=None):
    vocab = ToyVocabulary()
    full, baseline = ToyContext(1, 3.0), ToyContext(2, 3.0)
    session = TranslationSession(pool=toy_pool(iter([full, baseline]).__next__), vocab=vocab, prompt=prompt or ToyPrompt(vocab),
                                 policy=policy, options=SessionOptions(), n_ctx_tokens=n_ctx_tokens)
    return session, full


def _pieces(data: bytes, chunks: int):
    size = -(-len(data) // chunks)

    class Pieces:  # a stream that delivers `data` in `chunks` reads
        def __init__(self) -> None:
            self.parts = [data[i : i + size] for i in range(0, len(data), size)]

        def read1(self, n: int) -> bytes:  # noqa: ARG002
            return self.parts.pop(0) if self.parts else b""

    return Pieces()


def _events(text: str, chunks: int = 1):
    return list(read_words(_pieces(text.encode(), chunks)))


# --- 5: nothing but punctuation ---------------------------------------------------------------


def test_a_sentence_of_punctuation_is_written_through_without_the_model():
    session, full = _session()
    commits = [c for word in ",,, ;;; ---".split() for c in session.push(word)] + session.finish()
    assert [(c.text, c.sentence_end, c.source_read) for c in commits] == [(",,, ;;; ---", True, 3)]
    assert full.calls == 0
    assert session.sentence_index == 1


def test_punctuation_before_words_joins_their_sentence():
    session, full = _session()
    commits = session.push("...") + session.push("Hallo")
    assert session.source_words == ["...", "Hallo"]
    commits += session.push("Welt") + session.finish()
    assert full.calls > 0 and commits[-1].sentence_end and commits[-1].source_read == 3


def test_symbols_and_emoji_have_nothing_to_translate_but_digits_and_any_script_do():
    session, full = _session()
    for word, held in [("→", True), ("😀", True), ("42", False)]:
        session.reset()
        session.push(word)
        assert (session.source_words == []) == held, word
    for word in ("日", "ñ", "Ж"):
        session.reset()
        session.push(word)
        assert session.source_words == [word]


def test_the_cli_passes_punctuation_lines_through(tmp_path):
    model = _tiny_gguf(tmp_path)
    result = subprocess.run(CLI + ["translate", "--stdin", "--model", model, "--threads", "1"],
                            input=(PUNCTUATION + "\n").encode(), capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # "...", "!!!" and "???" end sentences of their own, as sentence-final punctuation does.
    assert result.stdout.decode().splitlines() == ["...", "!!!", "???", ",,, ;;; ---"]


# --- 7: whole escape sequences ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("Das ist \x1b]0;PWNED-TITLE\x07ein \x1b[31mroter\x1b[0m Test", "Das ist ein roter Test"),
    ("\x1b]2;title with spaces\x1b\\Hallo", "Hallo"),  # OSC ended by ST
    ("\x9d0;c1 title\x9cHallo \x9b1;2HWelt", "Hallo Welt"),  # C1 introducers
    ("\x1bPq#0;2;0;0;0\x1b\\Bild \x1b_app\x07da", "Bild da"),  # DCS (sixel), APC
    ("\x1b(BHallo \x1b7Welt\x1b8", "Hallo Welt"),  # charset designation, save/restore cursor
    ("Hallo \x1b]0;never ended\nWelt", "Hallo \nWelt"),  # an unterminated string ends at its line
    ("Hallo\x1b", "Hallo"),  # a lone ESC at the end
])
def test_escape_sequences_are_removed_whole(text, expected):
    assert strip_escapes(text) == expected


def test_a_sequence_split_across_reads_is_removed_whole():
    text = "Ein \x1b]0;my title\x07 roter \x1b[38;5;196mTest .\n"
    for chunks in (1, 3, 7, len(text)):
        words = [e.word for e in _events(text, chunks) if e.word is not None]
        assert words == ["Ein", "roter", "Test", "."], chunks
    stripper = EscapeStripper()
    assert stripper.feed("a \x1b]0;x y") + stripper.feed("z\x07 b \x1b[3") + stripper.feed("1mc", final=True) == "a  b c"


def test_a_pushed_word_loses_its_escape_sequences():
    session, _ = _session(PolicyOptions(name="offline"))
    session.push("\x1b[31mroter\x1b[0m")
    session.push("\x1b]0;x\x07")
    assert session.source_words == ["roter"]


# --- bytes that are not UTF-8 ----------------------------------------------------------------


@pytest.mark.parametrize("data, words, offset", [
    (b"Gr\xc3\xbc\xc3\x9fe dich \xff und mehr", ["Grüße", "dich"], 13),
    (b"halb\xe2\x82 fertig", ["halb"], 4),  # a character cut short inside a word
    (b"Hallo \xc3", ["Hallo"], 6),  # the stream ends inside a character
    (b"\xfe", [], 0),
])
def test_invalid_bytes_end_the_stream_after_the_words_before_them(data, words, offset):
    for chunks in range(1, len(data) + 1):  # wherever the reads split it, even inside a character
        events = []
        with pytest.raises(InvalidSourceBytes) as raised:
            events.extend(read_words(_pieces(data, chunks)))
        assert [e.word for e in events if e.word is not None] == words, chunks
        assert events[-1].sentence_end if words else events == [], chunks  # the sentence is finished first
        assert raised.value.offset == offset, chunks
        assert f"offset {offset}" in str(raised.value)


def test_a_byte_order_mark_is_not_part_of_the_first_word():
    data = "\ufeffGuten Morgen \ufeffda".encode()
    for chunks in range(1, len(data) + 1):
        words = [e.word for e in read_words(_pieces(data, chunks)) if e.word is not None]
        assert words == ["Guten", "Morgen", "\ufeffda"], chunks  # only the stream's first one goes


def test_a_session_translates_up_to_invalid_bytes_and_then_raises():
    session, _ = _session()
    commits = []
    with pytest.raises(InvalidSourceBytes):
        for commit in session.translate_stream(read_words(_pieces(b"Hallo Welt \xff weiter", 1))):
            commits.append(commit)
    assert commits and commits[-1].sentence_end and commits[-1].source_read == 2


# --- 6: a context too small for the prompt and one window ------------------------------------


class _LongPrompt(ToyPrompt):
    """A prompt of 40 tokens before the source, as instructions or few-shot examples make."""

    def prefix_tokens(self, source_text: str) -> list[int]:
        return [1] * 40 + super().prefix_tokens(source_text)


def test_a_context_without_room_for_one_window_is_refused():
    with pytest.raises(OptionsError, match=r"^--n-ctx 64 is too small: this model's prompt takes 42 tokens, .* "
                                           r"--n-ctx 128 or more$"):
        _session(prompt=_LongPrompt(ToyVocabulary()), n_ctx_tokens=64)
    # Just enough: the prompt and a window fill half the context.
    _session(prompt=_LongPrompt(ToyVocabulary()), n_ctx_tokens=2 * (42 + MIN_WINDOW_TOKENS))


def test_the_cli_names_n_ctx(tmp_path):
    result = _cli(tmp_path, "--n-ctx", "64")
    assert result.returncode == 2
    line = one_line_error(result)
    assert line.startswith("lsg-edge: error: --n-ctx 64 is too small: this model's prompt takes ") and \
        line.endswith(" or more"), line
    assert result.stdout == b""


# --- 8: range constraints the policy could never act on --------------------------------------


def test_top_bound_zero_is_refused_for_lsg_only():
    with pytest.raises(OptionsError, match=r"--top-bound must be at least 1 for LSG, got 0 .*--policy wait-k --k 3"):
        PolicyOptions(name="lsg", low_bound=3, top_bound=0)
    PolicyOptions(name="wait-k", top_bound=0)  # wait-k has no upper bound to speak of


@pytest.mark.parametrize(("policy", "flag"), [
    (PolicyOptions(name="lsg", low_bound=70, top_bound=4), "--low-bound 70 with --top-bound 4"),
    (PolicyOptions(name="lsg", low_bound=3, top_bound=62), "--low-bound 3 with --top-bound 62"),
    (PolicyOptions(name="wait-k", k=65), "--k 65"),
])
def test_bounds_beyond_the_longest_window_are_refused(policy, flag):
    with pytest.raises(OptionsError, match=f"^{flag} lies beyond the longest window \\(64 source words\\)"):
        check_session_limits(ToyPrompt(ToyVocabulary()), policy, 4096, 64, 0.5)
    check_session_limits(ToyPrompt(ToyVocabulary()), PolicyOptions(name="lsg", low_bound=3, top_bound=61), 4096, 64, 0.5)


@pytest.mark.parametrize(("flags", "expected"), [
    (["--top-bound", "0"], "--top-bound must be at least 1 for LSG, got 0"),
    (["--low-bound", "3", "--top-bound", "100"], "--low-bound 3 with --top-bound 100 lies beyond the longest window"),
])
def test_the_cli_refuses_meaningless_bounds(tmp_path, flags, expected):
    result = _cli(tmp_path, "--policy", "lsg", *flags)
    assert result.returncode == 2
    assert one_line_error(result).startswith(f"lsg-edge: error: {expected}")


# --- helpers ------------------------------------------------------------------------------------


def _tiny_gguf(folder: Path) -> Path:
    spec = tiny_spec("llama")
    return write_tiny_gguf(spec, make_hf_weights(spec), folder / "tiny.gguf")


def _cli(folder: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + ["translate", "--stdin", "--model", str(_tiny_gguf(folder)), "--threads", "1", *flags],
                          input=b"Hallo Welt .\n", capture_output=True, timeout=120)


# --- catching up: words that were waiting are read before the next decision -------------------


def _parts(*parts: bytes):
    class Parts:  # a stream that delivers each of `parts` in one read
        def __init__(self) -> None:
            self.parts = list(parts)

        def read1(self, n: int) -> bytes:  # noqa: ARG002
            return self.parts.pop(0) if self.parts else b""

    return Parts()


def test_words_of_one_read_are_marked_as_waiting_but_its_last():
    events = list(read_words(_parts(b"eins zwei ", b"drei vi", b"er\nf\xc3\xbcnf")))
    assert [(e.word, e.more_waiting) for e in events if e.word is not None] == [
        ("eins", True), ("zwei", False), ("drei", False), ("vier", False), ("fünf", False)]


def test_catching_up_decides_once_on_words_that_came_together():
    def run(catch_up: bool):
        session, full = _session()
        commits = list(session.translate_stream(read_words(_parts(b"eins zwei drei vier ", b"f\xc3\xbcnf\n")),
                                                catch_up=catch_up))
        return [c.source_read for c in commits if not c.sentence_end], full.calls

    each, each_calls = run(catch_up=False)
    caught_up, caught_up_calls = run(catch_up=True)
    assert set(each) == {1, 2, 3, 4, 5}  # wait-1: words written after every word read
    assert set(caught_up) == {4, 5}  # decided after the four that came together, then after the fifth
    assert caught_up_calls < each_calls


def test_the_word_splitter_gives_for_any_pieces_what_one_piece_gives():
    """The server's text streams cut words as `translate` does, however the text is cut into messages."""
    from lsg_edge.text.source import WordSplitter

    text = "Guten Morgen, Dr. Müller! Wie geht's?\nGut \x1b]0;title\x07danke"

    def words_and_ends(pieces: list[str]) -> list[str | None]:
        splitter = WordSplitter()
        events = [e for piece in pieces for e in splitter.feed(piece)] + splitter.end()
        return [e.word if e.word is not None else "|" for e in events]

    whole = words_and_ends([text])
    assert whole == ["Guten", "Morgen,", "Dr.", "Müller!", "|", "Wie", "geht's?", "|", "Gut", "danke", "|"]
    for size in (1, 2, 5, 13):
        assert words_and_ends([text[i : i + size] for i in range(0, len(text), size)]) == whole
    assert whole == [e.word if e.word is not None else "|" for e in _events(text, chunks=7)]


def test_the_word_splitter_holds_a_partial_word_until_whitespace_or_the_end():
    from lsg_edge.text.source import WordSplitter

    splitter = WordSplitter()
    assert [e.word for e in splitter.feed("eins zw")] == ["eins"]
    assert splitter.feed("ei") == []
    assert [(e.word, e.more_waiting) for e in splitter.feed(" drei vier ")] == [
        ("zwei", True), ("drei", True), ("vier", False)]
    assert [(e.word, e.sentence_end) for e in splitter.feed("fünf") + splitter.end()] == [
        ("fünf", False), (None, True)]
    assert splitter.end() == []  # nothing open any more
