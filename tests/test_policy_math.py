"""LSG's write test, range constraint and whole-word cuts on hand-made distributions."""

import numpy as np
import pytest

from lsg_edge.policy.bounds import words_allowed, words_required
from lsg_edge.policy.decision import kl_divergence, leading_run, log_softmax, write_test
from lsg_edge.policy.words import cut_at_words, word_starts


def logprobs(*rows):
    return np.log(np.array(rows, dtype=np.float64))


def test_kl_matches_hand_computation_in_both_directions():
    p = logprobs([0.7, 0.2, 0.1])
    q = logprobs([0.1, 0.3, 0.6])
    forward = 0.7 * np.log(7) + 0.2 * np.log(2 / 3) + 0.1 * np.log(1 / 6)
    backward = 0.1 * np.log(1 / 7) + 0.3 * np.log(3 / 2) + 0.6 * np.log(6)
    assert kl_divergence(p, q)[0] == pytest.approx(forward)
    assert kl_divergence(q, p)[0] == pytest.approx(backward)
    assert forward != pytest.approx(backward)


def test_kl_of_identical_distributions_is_zero_and_zero_mass_is_safe():
    p = np.log(np.array([[1.0, 0.0, 0.0]]))
    assert kl_divergence(p, p)[0] == pytest.approx(0.0)
    assert np.isfinite(kl_divergence(p, logprobs([0.5, 0.25, 0.25]))[0])


def test_log_softmax_normalises_rows():
    rows = log_softmax(np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]]))
    assert np.allclose(np.exp(rows).sum(axis=1), 1.0)


def test_write_test_direction_decides_which_positions_pass():
    # P_cur is flat-ish (fails α), and differs from P_base by a KL that depends on the direction.
    cur = logprobs([0.5, 0.49, 0.01])
    base = logprobs([0.01, 0.01, 0.98])
    paper = kl_divergence(cur, base)[0]
    code = kl_divergence(base, cur)[0]
    delta = (paper + code) / 2
    assert paper != pytest.approx(code)
    assert write_test(cur, base, delta, alpha=0.99, kl_direction="paper")[0] == (paper > delta)
    assert write_test(cur, base, delta, alpha=0.99, kl_direction="code")[0] == (code > delta)
    assert write_test(cur, base, delta, alpha=0.99, kl_direction="paper")[0] != write_test(
        cur, base, delta, alpha=0.99, kl_direction="code"
    )[0]


def test_confidence_alone_passes_a_position():
    cur = logprobs([0.8, 0.1, 0.1], [0.5, 0.3, 0.2])
    passes = write_test(cur, cur, delta=1.0, alpha=0.6)  # KL is zero everywhere
    assert passes.tolist() == [True, False]


def test_unknown_kl_direction_is_refused():
    cur = logprobs([0.5, 0.5])
    with pytest.raises(ValueError, match="kl_direction"):
        write_test(cur, cur, 1.0, 0.5, kl_direction="sideways")


def test_leading_run():
    assert leading_run(np.array([True, True, False, True])) == 2
    assert leading_run(np.array([False, True])) == 0
    assert leading_run(np.array([True, True])) == 2
    assert leading_run(np.array([], dtype=bool)) == 0


@pytest.mark.parametrize(
    ("read", "committed", "low", "top", "allowed", "required"),
    [
        (1, 0, 1, 4, 1, 0),  # word 1 may go once 1 word is read
        (2, 0, 3, 4, 0, 0),  # L=3: nothing before 3 words
        (3, 0, 3, 4, 1, 0),
        (6, 0, 3, 4, 4, 0),  # word 1 due at L+U = 7
        (7, 0, 3, 4, 5, 1),
        (9, 1, 1, 4, 8, 4),
        (5, 5, 1, 4, 0, 0),  # caught up
    ],
)
def test_range_bounds(read, committed, low, top, allowed, required):
    assert words_allowed(read, committed, low) == allowed
    assert words_required(read, committed, low, top) == required


def test_word_starts_marks_space_led_pieces_and_the_first():
    assert word_starts(["The", " police", "'s", " car", ","], at_target_start=True).tolist() == [True, True, False, True, False]
    assert word_starts(["man", " is"]).tolist() == [False, True]


def test_cut_keeps_only_whole_words_of_the_accepted_run():
    starts = word_starts([" The", " police", "man", " is"])
    # 3 tokens accepted = "The policeman" — whole only if the 4th token starts a word: it does.
    assert cut_at_words(starts, n_accepted=3, max_words=5) == (3, 2)
    # 2 accepted: "The police" may continue ("man"), so only "The" is whole.
    assert cut_at_words(starts, n_accepted=2, max_words=5) == (1, 1)
    # The range constraint caps the words.
    assert cut_at_words(starts, n_accepted=4, max_words=1) == (1, 1)


def test_cut_trailing_word_needs_the_end_of_the_draft():
    starts = word_starts([" Yes", " indeed"])
    assert cut_at_words(starts, n_accepted=2, max_words=5) == (1, 1)
    assert cut_at_words(starts, n_accepted=2, max_words=5, final_is_boundary=True) == (2, 2)


def test_forced_cut_writes_due_words_even_if_the_test_failed():
    starts = word_starts([" a", " b", " c", " d"])
    assert cut_at_words(starts, n_accepted=0, max_words=4, min_words=2) == (2, 2)
    # Not enough whole words in the draft: the longest cut it offers.
    assert cut_at_words(starts, n_accepted=0, max_words=9, min_words=9) == (3, 3)
