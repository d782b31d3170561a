"""The enrollment state machine: every (from, to) pair, as pure values."""

import itertools

import pytest

from services.assets.enrollment import Rejected, Transition, steps_to, transition
from services.assets.model import EnrollmentState as S

LEGAL = {
    (S.UNENROLLED, S.ELIGIBLE),
    (S.ELIGIBLE, S.PENDING),
    (S.PENDING, S.ENROLLED),
    (S.ELIGIBLE, S.UNENROLLED),
    (S.PENDING, S.UNENROLLED),
    (S.ENROLLED, S.UNENROLLED),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_every_pair(current, target):
    result = transition(current, target)
    if (current, target) in LEGAL:
        assert result == Transition(current, target)
    else:
        assert isinstance(result, Rejected)
        assert (result.from_state, result.to_state) == (current, target)
        assert current.value in result.reason


def test_rejections_explain_what_is_allowed():
    skip = transition(S.ELIGIBLE, S.ENROLLED)
    assert isinstance(skip, Rejected)
    assert skip.reason == ("cannot go from eligible to enrolled; "
                           "from eligible the next state can be pending or unenrolled")
    again = transition(S.ENROLLED, S.ENROLLED)
    assert isinstance(again, Rejected)
    assert again.reason.startswith("already enrolled")
    nothing = transition(S.UNENROLLED, S.UNENROLLED)
    assert isinstance(nothing, Rejected)
    assert nothing.reason == "already unenrolled; from unenrolled the next state can be eligible"


def test_unenroll_from_any_state():
    for state in (S.ELIGIBLE, S.PENDING, S.ENROLLED):
        assert transition(state, S.UNENROLLED) == Transition(state, S.UNENROLLED)


def test_steps_to_each_state_are_legal_and_chained():
    assert steps_to(S.UNENROLLED) == []
    assert steps_to(S.ELIGIBLE) == [Transition(S.UNENROLLED, S.ELIGIBLE)]
    chain = steps_to(S.ENROLLED)
    assert [(t.from_state, t.to_state) for t in chain] == [
        (S.UNENROLLED, S.ELIGIBLE), (S.ELIGIBLE, S.PENDING), (S.PENDING, S.ENROLLED)]
    assert all((t.from_state, t.to_state) in LEGAL for t in chain)
