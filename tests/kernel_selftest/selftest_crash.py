"""Powers the guest off mid-test: the runner must notice that pytest never finished."""

import os
import time
from pathlib import Path


def test_guest_dies() -> None:
    # sysrq 'o' powers off the machine it runs on: never do that outside the UML guest.
    assert "User Mode Linux" in Path("/proc/cpuinfo").read_text(), "run via scripts/kernel-test"
    os.sync()
    Path("/proc/sysrq-trigger").write_text("o")
    time.sleep(60)
