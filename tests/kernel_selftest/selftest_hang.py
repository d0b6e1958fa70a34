"""Never finishes: run with a short DANM_KERNEL_TIMEOUT to exercise the runner's timeout."""

import time
from pathlib import Path


def test_hangs() -> None:
    # Only inside the UML guest: on a host this would just block for an hour.
    assert "User Mode Linux" in Path("/proc/cpuinfo").read_text(), "run via scripts/kernel-test"
    time.sleep(3600)
