"""clusterkit.core.openslots: every open-slot shape -> the steps that close it, or a refusal."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from clusterkit.core.model import CloseSlot, MoveSlot, PodState, SetSlotNode
from clusterkit.core.openslots import close_open_slots, open_slots, open_states
from clusterkit.core.plan import Shape, make_plan
from tests.unit.factories import BUS_PORT, PORT, node_id, node_line, pod_ip, pod_state

IDS = [node_id(("open", i)) for i in range(6)]
RANGES = {0: "0-5460", 1: "5461-10922", 2: "10923-16383"}
SLOT = 100
"""Owned by pod 0 unless a test says otherwise."""


def cluster(
    opened: dict[int, str] | None = None,
    keys: dict[int, int] | None = None,
    ranges: dict[int, str] | None = None,
    epochs: dict[int, int] | None = None,
) -> list[PodState]:
    """Six pods, masters 0-2 (slots `ranges`), replicas 3->0, 4->1, 5->2. `opened` adds
    migration fields to a pod's own line; `keys` counts keys in every open slot per pod."""
    ranges = RANGES if ranges is None else ranges
    opened, keys, epochs = opened or {}, keys or {}, epochs or {}

    def line(i: int, me: bool) -> str:
        role = "master" if i < 3 else "slave"
        fields = " ".join(f for f in (ranges.get(i, ""), opened.get(i, "") if me else "") if f)
        return node_line(
            IDS[i],
            address=f"{pod_ip(i)}:{PORT}@{BUS_PORT},redis-{i}",
            flags=f"myself,{role}" if me else role,
            master=IDS[i - 3] if i >= 3 else "-",
            config_epoch=epochs.get(i, i + 1),
            slots=fields,
        )

    pods = [
        pod_state(i, [line(i, True), *(line(j, False) for j in range(6) if j != i)])
        for i in range(6)
    ]
    counted = open_slots(pods)
    return [replace(p, slot_keys={s: keys.get(p.ordinal, 0) for s in counted}) for p in pods]


def migrating(slot: int, to: int) -> str:
    return f"[{slot}->-{IDS[to]}]"


def importing(slot: int, source: int) -> str:
    return f"[{slot}-<-{IDS[source]}]"


def moved(source: int, target: int, handover: bool, announce: tuple[int, ...] = ()) -> MoveSlot:
    return MoveSlot(
        ordinal=source,
        slot=SLOT,
        target=target,
        source_id=IDS[source],
        target_id=IDS[target],
        source_ip=pod_ip(source),
        source_port=PORT,
        target_ip=pod_ip(target),
        target_port=PORT,
        handover=handover,
        announce=announce,
    )


def test_open_slots_come_from_the_masters_own_lines() -> None:
    pods = cluster({0: f"{migrating(SLOT, 1)} {migrating(7, 2)}", 1: importing(SLOT, 0)})
    assert open_slots(pods) == {SLOT, 7}
    state = open_states(pods[1])[SLOT]
    assert (state.migrating, state.peer) == (False, IDS[0])
    assert open_slots(cluster()) == set()


def test_a_replica_line_and_foreign_brackets_open_nothing() -> None:
    pods = cluster({3: migrating(SLOT, 1), 0: "[not-a-slot]"})
    assert open_slots(pods) == set()


def test_migrating_and_importing_with_keys_on_the_source_finish_the_move() -> None:
    pods = cluster({0: migrating(SLOT, 1), 1: importing(SLOT, 0)}, keys={0: 40})
    assert close_open_slots(pods) == (moved(0, 1, handover=True, announce=(2,)),)


def test_keys_split_over_both_sides_finish_the_move() -> None:
    pods = cluster({0: migrating(SLOT, 1), 1: importing(SLOT, 0)}, keys={0: 25, 1: 15, 4: 15})
    assert close_open_slots(pods) == (moved(0, 1, handover=True, announce=(2,)),)


def test_target_that_holds_keys_but_no_longer_imports_still_gets_the_slot() -> None:
    pods = cluster({0: migrating(SLOT, 1)}, keys={0: 3, 1: 5})
    assert close_open_slots(pods) == (moved(0, 1, handover=True, announce=(2,)),)


def test_other_importing_nodes_without_keys_are_closed_beside_the_move() -> None:
    pods = cluster({0: migrating(SLOT, 1), 1: importing(SLOT, 0), 2: importing(SLOT, 0)})
    assert close_open_slots(pods) == (
        moved(0, 1, handover=True, announce=(2,)),
        CloseSlot(2, SLOT),
    )


def test_only_migrating_on_the_owner_is_set_stable() -> None:
    pods = cluster({0: migrating(SLOT, 1)}, keys={0: 40})
    assert close_open_slots(pods) == (CloseSlot(0, SLOT),)


def test_only_importing_on_an_empty_non_owner_is_set_stable_and_told_the_owner() -> None:
    pods = cluster({2: importing(SLOT, 0)}, keys={0: 40})
    assert close_open_slots(pods) == (CloseSlot(2, SLOT), SetSlotNode(2, SLOT, 0, IDS[0]))


def test_importing_non_owner_with_keys_sends_them_to_the_owner() -> None:
    pods = cluster({2: importing(SLOT, 0)}, keys={0: 40, 2: 7})
    assert close_open_slots(pods) == (moved(2, 0, handover=False),)


def test_owner_migrating_nowhere_is_closed_before_stray_keys_come_back() -> None:
    # pod 1 is the owner's target but neither imports nor holds keys; pod 2 holds some.
    pods = cluster({0: migrating(SLOT, 1), 2: importing(SLOT, 0)}, keys={0: 4, 2: 7})
    assert close_open_slots(pods) == (moved(2, 0, handover=False), CloseSlot(0, SLOT))


def test_crash_after_the_target_took_the_slot_closes_the_source() -> None:
    # SETSLOT NODE reached the target (new epoch 9) but not the source, which still claims it.
    ranges = {**RANGES, 1: f"{SLOT} 5461-10922"}
    pods = cluster({0: migrating(SLOT, 1)}, keys={1: 40}, ranges=ranges, epochs={1: 9})
    assert close_open_slots(pods) == (CloseSlot(0, SLOT), SetSlotNode(0, SLOT, 1, IDS[1]))


def test_two_open_slots_are_closed_in_slot_order() -> None:
    pods = cluster({0: f"{migrating(SLOT, 1)} {migrating(7, 1)}"})
    assert close_open_slots(pods) == (CloseSlot(0, 7), CloseSlot(0, SLOT))


def test_stray_keys_beside_a_move_are_refused() -> None:
    pods = cluster({0: migrating(SLOT, 1), 1: importing(SLOT, 0)}, keys={0: 1, 2: 1})
    refusal = close_open_slots(pods)
    assert isinstance(refusal, str)
    assert "redis-2 also hold keys" in refusal
    assert "migrating on redis-0 to redis-1, importing on redis-1 from redis-0" in refusal


def test_slot_nobody_reachable_owns_is_refused() -> None:
    ranges = {**RANGES, 0: "0-99 101-5460"}
    refusal = close_open_slots(cluster({1: importing(SLOT, 0)}, ranges=ranges))
    assert isinstance(refusal, str)
    assert "no reachable master owns it" in refusal


def test_two_claimants_with_one_epoch_are_refused() -> None:
    ranges = {**RANGES, 1: f"{SLOT} 5461-10922"}
    refusal = close_open_slots(cluster({0: migrating(SLOT, 1)}, ranges=ranges, epochs={1: 1}))
    assert isinstance(refusal, str)
    assert "redis-0, redis-1 all claim it with config epoch 1" in refusal


def test_stale_claimant_holding_keys_is_refused() -> None:
    ranges = {**RANGES, 1: f"{SLOT} 5461-10922"}
    pods = cluster({0: migrating(SLOT, 2)}, keys={0: 1, 1: 1}, ranges=ranges, epochs={1: 9})
    refusal = close_open_slots(pods)
    assert isinstance(refusal, str)
    assert "redis-0 still claim it and hold keys" in refusal


def test_uncounted_keys_are_refused_not_guessed() -> None:
    pods = [replace(p, slot_keys={}) for p in cluster({0: migrating(SLOT, 1)})]
    assert "not counted" in str(close_open_slots(pods))


def test_make_plan_returns_only_the_fix_while_a_slot_is_open() -> None:
    pods = cluster({2: importing(SLOT, 0)})
    plan = make_plan(Shape(6, 3), pods)
    assert plan.refusal is None
    assert plan.actions == (CloseSlot(2, SLOT), SetSlotNode(2, SLOT, 0, IDS[0]))
    assert make_plan(Shape(6, 3), cluster()).actions == ()


def test_make_plan_passes_the_refusal_on() -> None:
    pods = cluster({0: migrating(SLOT, 1), 1: importing(SLOT, 0)}, keys={2: 1})
    assert "also hold keys" in str(make_plan(Shape(6, 3), pods).refusal)


STATES = st.sampled_from(["", "m1", "m2", "i0", "i1", "i2"])


@settings(max_examples=300, deadline=None)
@given(st.tuples(STATES, STATES, STATES), st.tuples(*[st.integers(0, 2)] * 3))
def test_every_open_master_gets_a_step_and_keys_never_go_stable_off_their_owner(
    states: tuple[str, str, str], counts: tuple[int, int, int]
) -> None:
    opened = {
        i: (migrating if s[0] == "m" else importing)(SLOT, int(s[1]))
        for i, s in enumerate(states)
        if s and int(s[1]) != i
    }
    pods = cluster(opened, keys=dict(enumerate(counts)))
    fix = close_open_slots(pods)
    if not opened or isinstance(fix, str):
        return
    touched = {a.ordinal for a in fix} | {a.target for a in fix if isinstance(a, MoveSlot)}
    assert set(opened) <= touched
    for action in fix:
        if isinstance(action, CloseSlot) and action.ordinal != 0:
            assert counts[action.ordinal] == 0, "STABLE on a non-owner holding keys"
        if isinstance(action, MoveSlot) and not action.handover:
            assert action.target == 0
