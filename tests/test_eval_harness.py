"""The evaluation harness without a model: commits → instances, input checks, sweeps, reports,
quality scores and LocalAgreement's agreement rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lsg_edge.errors import InputError, OptionsError
from lsg_edge.evaluation.instance import Instance, read_instances, write_instances
from lsg_edge.evaluation.report import format_table, plot_quality_latency, write_scores
from lsg_edge.evaluation.scoring import normalize_for_wer, quality_scores
from lsg_edge.evaluation.sweep import Setting, parse_sweep
from lsg_edge.evaluation.text_run import instance_from_commits, read_parallel
from lsg_edge.policy.local_agreement import LocalAgreementPolicy, agreed_prefix
from lsg_edge.policy.options import PolicyOptions
from lsg_edge.policy.strategies import Read, Write
from lsg_edge.policy.words import word_starts
from lsg_edge.events import Commit


def commit(text, separator=" ", read=1, ms=0.0, end=False, sentence=0):
    return Commit(text=text, separator=separator, sentence_index=sentence, source_read=read,
                  elapsed_ms=ms, n_words=len(text.split()), sentence_end=end)


# --- commits → instance ------------------------------------------------------------------------


def test_each_word_gets_the_source_read_when_its_commit_came_and_its_elapsed():
    commits = [commit("The", "", 2, 10.0), commit("police are", " ", 3, 25.0), commit("looking.", " ", 5, 40.0, True)]
    instance = instance_from_commits(0, "Die Polizei sucht nach Zeugen".split(), "The police are looking.", commits,
                                     reads=[2, 3, 5])
    assert instance.prediction == "The police are looking."
    assert instance.delays == (2.0, 3.0, 3.0, 5.0)
    assert instance.elapsed == (10.0, 25.0, 25.0, 40.0)
    assert instance.source_length == 5


def test_a_piece_continuing_a_word_in_a_later_commit_is_a_word_of_its_own_as_simuleval_logs_it():
    # "Road" written after 2 source words, its comma decided after 4: SimulEval splits each write
    # on whitespace and logs every piece with the source read at that write.
    commits = [commit("Burgess Road", "", 2, 5.0), commit(", before", "", 4, 9.0), commit("it.", " ", 5, 12.0, True)]
    instance = instance_from_commits(0, ["a", "b", "c", "d", "e"], "x", commits, reads=[2, 4, 5])
    assert instance.prediction == "Burgess Road , before it."
    assert instance.delays == (2.0, 2.0, 4.0, 4.0, 5.0)


def test_a_cut_line_counts_source_words_pushed_not_the_parts_own_counts():
    # The session cut a long line when word 4 came (bounded window): the first part's last commit
    # came back from that push, and the second part counts its words from 1 again.
    commits = [commit("one two", "", 3, 30.0, True), commit("three", "", 1, 5.0, sentence=1),
               commit("four", " ", 2, 8.0, True, sentence=1)]
    instance = instance_from_commits(0, list("abcde"), "x", commits, reads=[4, 4, 5])
    assert instance.delays == (4.0, 4.0, 4.0, 5.0)
    assert instance.elapsed == (30.0, 30.0, 35.0, 38.0)


def test_empty_output_is_an_instance_without_delays():
    instance = instance_from_commits(0, ["a"], "ref", [commit("", "", 1, 3.0, True)], reads=[1])
    assert instance.prediction == "" and instance.delays == ()


def test_commits_and_reads_must_pair_up():
    with pytest.raises(ValueError):
        instance_from_commits(0, ["a"], "ref", [commit("x", "", 1, 3.0, True)], reads=[])


def test_instances_log_round_trip(tmp_path):
    instance = Instance(1, "a b", "x y", 3, (1.0, 3.0), (2.5, 9.0), "word", "s t u")
    write_instances(tmp_path / "instances.log", [instance])
    line = json.loads((tmp_path / "instances.log").read_text())
    assert line["prediction_length"] == 2 and line["source_length"] == 3
    assert read_instances(tmp_path / "instances.log") == [instance]


# --- input checks --------------------------------------------------------------------------------


def test_misaligned_files_are_one_input_error(tmp_path):
    (tmp_path / "de.txt").write_text("a b\nc d\n")
    (tmp_path / "en.txt").write_text("x\n")
    with pytest.raises(InputError, match="2 lines but --reference .* has 1"):
        read_parallel(tmp_path / "de.txt", tmp_path / "en.txt")


def test_empty_files_and_lines_are_input_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "de.txt").write_text("a\n \n")
    (tmp_path / "en.txt").write_text("x\ny\n")
    with pytest.raises(InputError, match="is empty"):
        read_parallel(tmp_path / "empty.txt", tmp_path / "empty.txt")
    with pytest.raises(InputError, match=":2 is empty"):
        read_parallel(tmp_path / "de.txt", tmp_path / "en.txt")
    with pytest.raises(InputError, match="cannot read"):
        read_parallel(tmp_path / "missing.txt", tmp_path / "en.txt")
    assert len(read_parallel(tmp_path / "de.txt", tmp_path / "en.txt", limit=1)) == 1


def test_bytes_that_are_not_utf8_name_the_file_and_line(tmp_path):
    (tmp_path / "de.txt").write_bytes(b"eins\r\nzwei\n")
    (tmp_path / "en.txt").write_bytes(b"one\ntw\xe9\n")  # Latin-1, not UTF-8
    with pytest.raises(InputError, match=r"--reference .*en.txt: line 2 is not UTF-8 \(byte 0xe9\)"):
        read_parallel(tmp_path / "de.txt", tmp_path / "en.txt")
    (tmp_path / "en.txt").write_bytes(b"\xef\xbb\xbfone\n\xfftwo\n")
    with pytest.raises(InputError, match=r"line 2 is not UTF-8 \(byte 0xff\)"):
        read_parallel(tmp_path / "de.txt", tmp_path / "en.txt")
    (tmp_path / "en.txt").write_text("\ufeffone\u2028still one\ntwo\n")  # a byte-order mark; only line breaks split
    assert [pair.reference for pair in read_parallel(tmp_path / "de.txt", tmp_path / "en.txt")] == ["one\u2028still one", "two"]


# --- sweeps and reports ------------------------------------------------------------------------


def test_sweep_grammar():
    assert [s.label for s in parse_sweep("wait-k:k=1,3")] == ["wait-k k=1", "wait-k k=3"]
    paper = parse_sweep("lsg:L/U=1/4,7/6;delta=9.0;alpha=0.6")
    assert [dict(s.overrides) for s in paper] == [
        {"low_bound": 1, "top_bound": 4, "delta": 9.0, "alpha": 0.6},
        {"low_bound": 7, "top_bound": 6, "delta": 9.0, "alpha": 0.6},
    ]
    assert parse_sweep("local-agreement") == [Setting("local-agreement")]
    options = paper[1].policy_options(PolicyOptions())
    assert (options.name, options.low_bound, options.top_bound) == ("lsg", 7, 6)
    assert Setting.from_options(PolicyOptions(name="wait-k", k=5)).label == "wait-k k=5"
    assert Setting.from_options(PolicyOptions(name="lsg")).label == "lsg L=1 U=4 delta=9 alpha=0.6"
    for bad in ("beam:k=1", "wait-k:k", "wait-k:q=1", "wait-k:k=x", "lsg:L/U=1"):
        with pytest.raises(OptionsError):
            parse_sweep(bad)


def test_table_json_and_plot(tmp_path):
    rows = [
        {"policy": "offline", "setting": "offline", "n_sentences": 2, "BLEU": 20.0, "AL": 9.0, "LAAL": 9.0},
        {"policy": "wait-k", "setting": "wait-k k=1", "n_sentences": 2, "BLEU": 10.0, "AL": 1.0, "LAAL": float("nan")},
        {"policy": "wait-k", "setting": "wait-k k=3", "n_sentences": 2, "BLEU": 15.0, "AL": 3.0, "LAAL": 3.2},
    ]
    table = format_table(rows)
    assert "wait-k k=3" in table and "nan" in table and "WER" not in table
    assert format_table(rows, markdown=True).splitlines()[1].startswith("|---")
    write_scores(tmp_path / "scores.json", rows, {"n": 2})
    assert json.loads((tmp_path / "scores.json").read_text())["rows"][1]["LAAL"] is None
    plot_quality_latency(rows, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- quality ----------------------------------------------------------------------------------


def test_quality_scores_are_sacrebleu_and_jiwer():
    import sacrebleu

    hyps, refs = ["the cat sat on the mat", "hello there"], ["the cat sat on a mat", "hello there"]
    instances = [Instance(i, h, r, 3, (1.0,) * len(h.split()), (0.0,) * len(h.split())) for i, (h, r) in enumerate(zip(hyps, refs))]
    scores = quality_scores(instances, ("BLEU", "chrF", "WER"))
    assert scores["BLEU"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert scores["chrF"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert scores["WER"] == pytest.approx(100.0 / 8)


def test_wer_normalisation():
    assert normalize_for_wer("  It's  WELL-known, 42!  ") == "it's well known 42"


# --- LocalAgreement ---------------------------------------------------------------------------


def starts(pieces):
    return word_starts(pieces)


def test_agreement_is_on_whole_words_in_both_hypotheses():
    # tokens: 1=" The", 2=" house", 3="s", 4=" is"
    prev, cur = [1, 2, 3], [1, 2, 4]
    assert agreed_prefix(prev, starts([" The", " house", "s"]), False, cur, starts([" The", " house", " is"]), False) == 1
    same = [1, 2, 4]
    assert agreed_prefix(same, starts([" The", " house", " is"]), False, cur, starts([" The", " house", " is"]), False) == 2
    # Both finished with the same words: everything agrees.
    assert agreed_prefix(same, starts([" The", " house", " is"]), True, cur, starts([" The", " house", " is"]), True) == 3
    assert agreed_prefix([], np.zeros(0, bool), False, cur, starts([" The", " house", " is"]), False) == 0


class ScriptedView:
    """A DecisionView over canned hypotheses (one per source word read), like the session's."""

    PIECES = {1: " The", 2: " house", 3: " is", 4: " red", 5: " blue"}

    def __init__(self, n_read, n_committed, hypothesis):
        from lsg_edge.policy.drafting import Draft

        self.n_read, self.n_committed_words, self.at_target_start = n_read, n_committed, n_committed == 0
        self.stop_ends_word = True
        self._draft = Draft(tokens=list(hypothesis))
        self.drafts = 0

    def hypothesis(self):
        self.drafts += 1
        return self._draft

    def baseline_logits(self, tokens, positions):  # pragma: no cover - LA never asks
        raise AssertionError("LocalAgreement does not score under the baseline")

    def pieces(self, tokens):
        return [self.PIECES[t] for t in tokens]


def test_local_agreement_commits_what_two_consecutive_hypotheses_share():
    policy = LocalAgreementPolicy()
    assert policy.decide(ScriptedView(1, 0, [1, 2, 5])) == Read()  # nothing to compare with
    assert policy.decide(ScriptedView(2, 0, [1, 2, 3, 4])) == Write(2)  # "The house" agreed
    again = ScriptedView(2, 2, [3, 4])
    assert policy.decide(again) == Read() and again.drafts == 0  # same input: READ
    assert policy.decide(ScriptedView(3, 2, [3, 4])) == Write(1)  # "is" agreed ("red" is last)
    # A new sentence (the session resets the policy) forgets the old hypotheses.
    policy.reset()
    assert policy.decide(ScriptedView(1, 0, [3, 4])) == Read()
