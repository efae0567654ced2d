"""clusterkit.core.steps.steps_for: which steps a replaced pod's sidecar carries out."""

from __future__ import annotations

from clusterkit.core.model import Forget, Meet, Replicate
from clusterkit.core.plan import Plan
from clusterkit.core.steps import steps_for

OLD_4, OLD_5 = "4" * 40, "5" * 40
FORGET_4_ON_1, FORGET_4_ON_2 = Forget(1, OLD_4, 4), Forget(2, OLD_4, 4)
FORGET_5_ON_1 = Forget(1, OLD_5, 5)
MEET_4, MEET_5 = Meet(4, 0, "10.0.0.1", 6379, 16379), Meet(5, 0, "10.0.0.1", 6379, 16379)
REPLICATE_4 = Replicate(4, 1, "1" * 40)
PLAN = Plan(actions=(FORGET_4_ON_1, FORGET_4_ON_2, FORGET_5_ON_1, MEET_4, REPLICATE_4, MEET_5))


def test_a_replaced_pod_forgets_its_old_identity_everywhere_and_joins() -> None:
    assert steps_for(PLAN, 4, old_ids={OLD_4}) == (
        FORGET_4_ON_1,
        FORGET_4_ON_2,
        MEET_4,
        REPLICATE_4,
    )


def test_once_it_serves_only_the_forgets_are_left() -> None:
    assert steps_for(PLAN, 4, old_ids={OLD_4}, serving=True) == (FORGET_4_ON_1, FORGET_4_ON_2)


def test_another_pods_old_identity_is_not_this_pods_to_forget() -> None:
    assert steps_for(PLAN, 5, old_ids={OLD_5}) == (FORGET_5_ON_1, MEET_5)
    assert steps_for(PLAN, 3) == ()
