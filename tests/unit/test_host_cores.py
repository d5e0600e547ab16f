"""Each host of a distributed training job gets its own share of the cores (training.cores_for_host)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from include.sagemaker_emulator.training import cores_for_host


def test_two_hosts_split_the_cores_without_overlap() -> None:
    hosts = ["algo-1", "algo-2"]
    assert cores_for_host("algo-1", hosts, [0, 1]) == [0]
    assert cores_for_host("algo-2", hosts, [0, 1]) == [1]
    assert cores_for_host("algo-1", hosts, [0, 1, 2, 3, 4]) == [0, 1]
    assert cores_for_host("algo-2", hosts, [0, 1, 2, 3, 4]) == [2, 3, 4]


def test_more_hosts_than_cores_share_round_robin() -> None:
    hosts = [f"algo-{i}" for i in range(1, 6)]
    assert [cores_for_host(h, hosts, [3, 7]) for h in hosts] == [[3], [7], [3], [7], [3]]


def test_every_core_is_used_once() -> None:
    hosts = ["algo-1", "algo-2", "algo-3"]
    allowed = list(range(8))
    shares = [cores_for_host(h, hosts, allowed) for h in hosts]
    assert sorted(c for share in shares for c in share) == allowed


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")
def test_pinning_a_process_restricts_it_to_its_share() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    code = (
        "import os; from include.sagemaker_emulator.training import pin_to_own_cores; "
        "pin_to_own_cores('algo-2', ['algo-1', 'algo-2']); print(sorted(os.sched_getaffinity(0)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(cores_for_host("algo-2", ["algo-1", "algo-2"], allowed))
