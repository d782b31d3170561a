"""Program enrollment as a state machine: eligible → pending → enrolled, unenroll from any state.

    unenrolled ──▶ eligible ──▶ pending ──▶ enrolled
        ▲             │            │           │
        └─────────────┴────────────┴───────────┘   (unenroll)

`transition` is pure: it returns the change to record or a `Rejected` value saying why and what
would be allowed. A request for the state the installation is already in is rejected too, so
that every audit entry is a real change.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.assets.model import EnrollmentState

S = EnrollmentState

ALLOWED: dict[EnrollmentState, tuple[EnrollmentState, ...]] = {
    S.UNENROLLED: (S.ELIGIBLE,),
    S.ELIGIBLE: (S.PENDING, S.UNENROLLED),
    S.PENDING: (S.ENROLLED, S.UNENROLLED),
    S.ENROLLED: (S.UNENROLLED,),
}


@dataclass(frozen=True)
class Transition:
    from_state: EnrollmentState
    to_state: EnrollmentState


@dataclass(frozen=True)
class Rejected:
    from_state: EnrollmentState
    to_state: EnrollmentState
    reason: str


def transition(current: EnrollmentState, target: EnrollmentState) -> Transition | Rejected:
    if target in ALLOWED[current]:
        return Transition(current, target)
    allowed = " or ".join(s.value for s in ALLOWED[current])
    reason = f"already {current.value}" if target == current else f"cannot go from {current.value} to {target.value}"
    return Rejected(current, target, f"{reason}; from {current.value} the next state can be {allowed}")


def steps_to(target: EnrollmentState) -> list[Transition]:
    """The legal transitions from unenrolled to `target` (how a bulk seed writes its history)."""
    order = [S.UNENROLLED, S.ELIGIBLE, S.PENDING, S.ENROLLED]
    steps = []
    for current, following in zip(order, order[1:], strict=False):
        if current == target:
            break
        step = transition(current, following)
        assert isinstance(step, Transition)
        steps.append(step)
    return steps
