"""Test collection and the fixtures shared by the whole suite.

tests/kernel needs a kernel with ipvlan, 802.1q and dummy links, which the host lacks: it runs
only inside user-mode Linux through `scripts/kernel-test tests/kernel`. tests/kernel_selftest
holds fixture modules for the runner's own test (tests/test_kernel_runner.py). Neither is
collected when pytest walks tests/; both are still collected when named explicitly (pytest
applies `collect_ignore` only while recursing), which is how scripts/kernel-test runs them.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testlib import REPO

collect_ignore = ["kernel", "kernel_selftest"]


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """An embedded API server with danm's CRDs, one per test module that asks for it."""
    # imported here, not at the top: the kernel tests in UML load this file too
    from danm.apiserver import ApiServer, load_crds

    api = ApiServer().start()
    load_crds(api, str(REPO / "deploy" / "crds"))
    yield api
    api.stop()


@pytest.fixture(scope="module")
def kubeconfig(server: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(server.kubeconfig())
    return path
