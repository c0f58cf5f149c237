"""Loop invariants of the simultaneous session, over random models and settings (hypothesis).

The range constraint (Guo et al. 2025 §3.3), in source words read (j) and target words committed:
never a write of word i before L+i-1 words are read; word i always written once L+i-1+U are read;
everything written by the end; nothing committed is ever changed.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from lsg_edge.policy.options import PolicyOptions
from lsg_edge.text.session import SessionOptions, TranslationSession
from toy_model import ToyContext, ToyPrompt, ToyVocabulary


def make_session(policy: PolicyOptions, seed: int, sharpness: float) -> TranslationSession:
    vocab = ToyVocabulary()
    return TranslationSession(
        full=ToyContext(seed, sharpness),
        baseline=ToyContext(seed, sharpness),
        vocab=vocab,
        prompt=ToyPrompt(vocab),
        policy=policy,
        options=SessionOptions(),
        n_ctx_tokens=4096,
    )


def committed_words(session: TranslationSession) -> int:
    return session._sentence.n_words_committed


@settings(max_examples=60, deadline=None)
@given(
    low=st.integers(1, 4),
    top=st.integers(0, 5),
    delta=st.floats(0.0, 6.0),
    alpha=st.floats(0.05, 1.0),
    n_source=st.integers(1, 14),
    seed=st.integers(0, 2**31 - 1),
    sharpness=st.floats(0.5, 8.0),
    direction=st.sampled_from(["paper", "code"]),
    draft_tokens=st.integers(1, 10),
)
def test_lsg_respects_the_range_constraint(low, top, delta, alpha, n_source, seed, sharpness, direction, draft_tokens):
    policy = PolicyOptions(
        name="lsg", delta=delta, alpha=alpha, low_bound=low, top_bound=top,
        kl_direction=direction, draft_tokens=draft_tokens,
    )
    session = make_session(policy, seed, sharpness)
    for j in range(1, n_source + 1):
        before = committed_words(session)
        commits = session.push(f"s{j}")
        for commit in commits:
            assert commit.source_words_read == j
        after = committed_words(session)
        assert after >= before
        # Never ahead of the lower bound: word i needs L+i-1 <= j.
        assert after <= max(0, j - low + 1)
        # Never behind the upper bound: word i is out once L+i-1+U <= j.
        assert after >= j - low - top + 1
    final = session.finish()
    assert len(final) == 1 and final[0].sentence_end


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 5), n_source=st.integers(1, 12), seed=st.integers(0, 2**31 - 1))
def test_wait_k_writes_exactly_on_schedule(k, n_source, seed):
    session = make_session(PolicyOptions(name="wait-k", k=k), seed, 2.0)
    for j in range(1, n_source + 1):
        session.push(f"s{j}")
        assert committed_words(session) == max(0, j - k + 1)


@settings(max_examples=30, deadline=None)
@given(n_source=st.integers(1, 12), seed=st.integers(0, 2**31 - 1), name=st.sampled_from(["lsg", "wait-k", "offline"]))
def test_commits_form_one_sentence_and_the_end_is_marked_once(n_source, seed, name):
    session = make_session(PolicyOptions(name=name, k=2, low_bound=2, top_bound=2), seed, 3.0)
    commits = []
    for j in range(1, n_source + 1):
        commits += session.push(f"s{j}")
    commits += session.finish()
    assert commits[-1].sentence_end and all(not c.sentence_end for c in commits[:-1])
    assert commits[0].separator == ""
    assert all(c.source_words_read <= n_source for c in commits)
    assert [c.sentence_index for c in commits] == [0] * len(commits)
    assert session.sentence_index == 1 and session.source_words == []


def test_offline_writes_nothing_before_the_end():
    session = make_session(PolicyOptions(name="offline"), 7, 2.0)
    assert all(session.push(f"s{j}") == [] for j in range(1, 9))
    (last,) = session.finish()
    assert last.sentence_end and last.text and last.source_words_read == 8
