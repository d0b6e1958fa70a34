"""The CNI path's import budget on the host: no typer, kubernetes or grpc ever, and pyroute2
only where a link, address, route or rule is touched (here: never). The real-kernel test
tests/kernel/test_cni_ipvlan.py checks a successful ADD and DEL, which do load pyroute2."""

from pathlib import Path
from typing import Any

import pytest

from danm import kube
from cnilib import Outcome, Plugin, create_pod, netns

FORBIDDEN = ("typer", "click", "kubernetes", "grpc", "pyroute2", "asyncio")
PROFILE = {"PYTHONPROFILEIMPORTTIME": "1"}


def imported(outcome: Outcome) -> set[str]:
    return {
        line.split("|")[-1].strip().split(".")[0]
        for line in outcome.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


@pytest.fixture(scope="module")
def client(kubeconfig: Path) -> Any:
    with kube.ApiClient(kube.load_config(str(kubeconfig))) as made:
        yield made


def test_verbs_that_change_no_link_load_no_netlink(kubeconfig: Path, client: kube.ApiClient, tmp_path: Path) -> None:
    create_pod(client, "budget", [{"network": "nowhere"}])
    plugin = Plugin(kubeconfig, tmp_path)
    gc_config: dict[str, Any] = {"cni.dev/valid-attachments": []}
    with netns() as path:
        outcomes = {
            "ADD refused": plugin.run("ADD", container_id="c-budget", netns=path, pod="budget", env=PROFILE),
            "DEL of a gone sandbox": plugin.run("DEL", container_id="c-gone", netns="/run/netns/gone", pod="budget", env=PROFILE),
            "STATUS": plugin.run("STATUS", env=PROFILE),
            "GC": plugin.run("GC", env=PROFILE, **gc_config),
        }
    assert outcomes["ADD refused"].returncode == 1 and outcomes["ADD refused"].code == 100
    for verb, outcome in outcomes.items():
        if verb != "ADD refused":
            assert outcome.returncode == 0, (verb, outcome)
        modules = imported(outcome)
        assert "msgspec" in modules, verb  # the profile was taken
        assert not modules & set(FORBIDDEN), (verb, modules & set(FORBIDDEN))
