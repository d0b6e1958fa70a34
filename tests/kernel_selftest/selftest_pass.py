"""Passes, and checks that it really runs inside the UML guest with the modules loaded."""

import os
from pathlib import Path


def test_runs_inside_the_guest() -> None:
    assert os.environ["DANM_IN_KERNEL_VM"] == "1"
    loaded = {line.split()[0] for line in Path("/proc/modules").read_text().splitlines()}
    assert {"ipvlan", "8021q", "dummy", "vxlan", "macvlan", "veth", "bridge"} <= loaded
