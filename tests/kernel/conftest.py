"""Real-kernel tests: they run only inside the user-mode Linux guest of scripts/kernel-test.

Outside it (DANM_IN_KERNEL_VM unset) every test here fails -- it is not skipped, so that a run
that silently did not exercise the kernel cannot pass.
"""

import os

import pytest

IN_KERNEL_VM = os.environ.get("DANM_IN_KERNEL_VM") == "1"


@pytest.fixture(autouse=True, scope="session")
def _require_kernel_vm() -> None:
    if not IN_KERNEL_VM:
        pytest.fail(
            "tests/kernel needs a kernel with ipvlan/8021q/dummy links: "
            "run them through `scripts/kernel-test tests/kernel` (DANM_IN_KERNEL_VM is not set)",
            pytrace=False,
        )
