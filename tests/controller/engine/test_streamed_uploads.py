"""Uploads summed as they arrive: the board hands each body to the aggregation and keeps none."""

from __future__ import annotations

import numpy as np

from controller.engine.aggregation import PlainAggregation, StreamedAggregation
from controller.engine.board import StageKey, SubmitResult, TaskBoard
from protocol.rounds import Task

KEY = StageKey("exp", 0, 1, "upload")


def _open(dim: int = 4) -> tuple[TaskBoard, PlainAggregation]:
    board, agg = TaskBoard(), PlainAggregation(["a", "b", "c"], dim)
    assert isinstance(agg, StreamedAggregation)
    assert agg.streams("upload")
    tasks = {u: Task(experiment_id="exp", round=0, attempt=1, stage="upload") for u in "ab"}
    board.open_stage(KEY, tasks, lambda agent, body: agg.take("upload", agent, body))
    return board, agg


def test_each_upload_is_added_on_arrival_and_only_a_marker_kept() -> None:
    board, agg = _open()
    ones = np.ones(4, "<f4").tobytes()
    assert board.submit(KEY, "a", ones) == SubmitResult.OK
    assert board.submit(KEY, "b", (2 * np.ones(4, "<f4")).tobytes()) == SubmitResult.OK
    got = board.wait(KEY, deadline_unix=0.0)
    assert got == {"a": b"", "b": b""}
    assert agg.receive("upload", got) == []
    total, members = agg.result()
    np.testing.assert_array_equal(total, [3.0, 3.0, 3.0, 3.0])
    assert total.dtype == np.float64
    assert members == ["a", "b"]


def test_a_malformed_upload_is_refused_at_once_and_leaves_the_sum_alone() -> None:
    board, agg = _open()
    bad = np.array([1, np.nan, 1, 1], "<f4").tobytes()
    reason = board.submit(KEY, "a", bad)
    assert reason.startswith(SubmitResult.MALFORMED)
    assert "non-finite" in reason
    assert board.submit(KEY, "a", np.ones(4, "<f4").tobytes()) == SubmitResult.DUPLICATE
    short = board.submit(KEY, "b", b"\x00" * 12)
    assert short.startswith(SubmitResult.MALFORMED)
    assert "12 bytes" in short
    # both agents are done: the stage does not wait for them until its deadline
    got = board.wait(KEY, deadline_unix=float("inf"))
    assert got == {}
    assert sorted(agg.receive("upload", got)) == ["a", "b"]
    assert board.rejected == {SubmitResult.MALFORMED: 2, SubmitResult.DUPLICATE: 1}
    np.testing.assert_array_equal(agg._sum, np.zeros(4))


def test_only_the_stage_agents_may_upload_and_once_each() -> None:
    board, agg = _open()
    ones = np.ones(4, "<f4").tobytes()
    assert board.submit(KEY, "c", ones) == SubmitResult.NOT_EXPECTED  # selected, did not arrive
    assert board.submit(KEY, "a", ones) == SubmitResult.OK
    assert board.submit(KEY, "a", ones) == SubmitResult.DUPLICATE
    board.close_stage(KEY)
    assert board.submit(KEY, "b", ones) == SubmitResult.NOT_EXPECTED  # late
    total, members = agg.result()
    np.testing.assert_array_equal(total, np.ones(4))
    assert members == ["a"]


def test_without_the_board_receive_sums_as_before() -> None:
    agg = PlainAggregation(["a", "b"], 2)
    rejected = agg.receive("upload", {"a": np.ones(2, "<f4").tobytes(), "b": b"xx"})
    assert rejected == ["b"]
    np.testing.assert_array_equal(agg.result()[0], [1.0, 1.0])
