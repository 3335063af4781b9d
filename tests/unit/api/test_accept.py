"""The shared connection counts ``up --workers N`` processes defer to when they accept."""

from __future__ import annotations

import os

from strongroom.api.accept import ConnectionCounts


def test_a_process_defers_only_to_running_siblings_and_sees_their_counts_across_fork() -> None:
    counts = ConnectionCounts(3)
    assert counts.fewest_elsewhere(0) is None  # nobody has started: nobody to defer to
    counts.set(0, 4)
    pid = os.fork()
    if pid == 0:  # a sibling process publishes its count into the same memory
        counts.set(1, 2)
        os._exit(0)
    os.waitpid(pid, 0)
    counts.set(2, 3)
    assert counts.fewest_elsewhere(0) == 2
    assert counts.fewest_elsewhere(1) == 3  # its own count is not a sibling's
    counts.leave(1)  # died: its connections died with it
    assert counts.fewest_elsewhere(0) == 3
    counts.leave(2)
    assert counts.fewest_elsewhere(0) is None
