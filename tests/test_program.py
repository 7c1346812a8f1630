"""Specification of what `preflight.program` does to the process around one run: the open-file
limit, and the cycle collector's settings, both given back as they were where they can be."""

from __future__ import annotations

import gc
import resource

from preflight import program


def test_the_collector_runs_less_often_during_a_run_and_as_before_after_it() -> None:
    before = gc.get_threshold()
    kept = object()
    with program.few_collections():
        assert gc.get_threshold()[0] == program.COLLECTION_SPACING * before[0]
        assert gc.get_threshold()[1] > before[1]  # and the middle generation's passes
        assert gc.get_freeze_count() > 0  # what existed before the run is out of its sight
        assert kept is not None
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_what_the_run_left_is_frozen_for_the_reports_and_thawed_after() -> None:
    with program.few_collections() as run_done:
        at_start = gc.get_freeze_count()
        results = [[n] for n in range(10_000)]  # what a run leaves for the reports
        run_done()
        # Another thread of the session may free a few frozen objects meanwhile (53 once, in
        # CI): the results' 10,000 are what must show.
        assert gc.get_freeze_count() >= at_start + len(results) - 1000
    assert gc.get_freeze_count() == 0


def test_a_callers_own_frozen_objects_stay_frozen() -> None:
    # The count is bounded, not exact: another thread of the session (a lab server winding
    # down) may free a few frozen objects meanwhile (54 of 529,388 once, in CI).
    gc.freeze()
    frozen = gc.get_freeze_count()
    try:
        with program.few_collections() as run_done:
            made = [[n] for n in range(1000)]  # what a run would leave
            run_done()  # freezes nothing: the caller's freeze is not ours to extend
            assert frozen // 2 < gc.get_freeze_count() <= frozen  # neither thawed nor added to
            assert made
        assert frozen // 2 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


def test_the_room_for_targets_leaves_descriptors_for_everything_else() -> None:
    room, limit = program.descriptor_room()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert limit == soft
    assert 0 < room <= soft - program.DESCRIPTOR_RESERVE
