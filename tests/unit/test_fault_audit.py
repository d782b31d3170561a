"""The fault report's comparisons (bench/fault_audit.py): what counts as lost and as duplicated."""

from bench.fault_audit import compare_commands, compare_samples
from bench.fault_cases import event_counter, peak_rate


def test_every_generated_sample_stored_once_is_neither_lost_nor_duplicated() -> None:
    audit = compare_samples({"a": [1, 2], "b": [3]}, {}, [("a", 1), ("a", 2), ("b", 3)], rollup_samples=3)
    assert (audit.lost, audit.duplicated, audit.unexpected, audit.ok) == (0, 0, 0, True)


def test_missing_stored_twice_and_refused_samples_are_told_apart() -> None:
    audit = compare_samples({"a": [1, 2, 3], "b": [4]}, {"b": [(4, "timestamp_in_future")]},
                            [("a", 1), ("a", 1), ("a", 3), ("z", 9)], rollup_samples=3)
    assert audit.lost == 1            # a@2: generated, not refused, not stored
    assert audit.refused == 1         # b@4 was refused with a reason: not a loss
    assert audit.duplicated == 1      # a@1 twice
    assert audit.unexpected == 1      # z@9 never generated
    assert not audit.ok


def test_rollups_counting_a_replay_twice_are_a_duplicate() -> None:
    audit = compare_samples({"a": [1, 2]}, {}, [("a", 1), ("a", 2)], rollup_samples=3)
    assert audit.duplicated == 1 and not audit.ok


def test_a_redelivered_command_answered_from_memory_is_not_executed_twice() -> None:
    received = {"d0": ["c1", "c1"], "d1": ["c2"]}
    assert compare_commands(2, 2, {"d0": 1, "d1": 1}, received).ok
    twice = compare_commands(2, 1, {"d0": 2, "d1": 1}, received)
    assert (twice.lost, twice.executed_twice, twice.redelivered) == (1, 1, 1)


def test_peak_rate_is_the_largest_increase_over_a_second() -> None:
    samples = [(0.0, 0.0), (0.5, 10.0), (1.0, 20.0), (1.5, 120.0), (2.0, 125.0), (3.0, 125.0)]
    assert peak_rate(samples) == 110.0      # 10 at 0.5 s → 120 at 1.5 s


def test_events_close_together_are_not_read_as_a_huge_rate() -> None:
    assert peak_rate(event_counter([10.0, 10.001, 10.002])) == 3.0
    assert peak_rate(event_counter([0.0, 0.5, 2.0, 2.2, 2.4, 2.6])) == 4.0
