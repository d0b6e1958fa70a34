"""danm.podresources against a real grpc server speaking kubelet's PodResources v1 API on a unix
socket (tests/sriovlib.FakePodResources)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from sriovlib import FakePod, FakePodResources

from danm.errors import DanmError
from danm.podresources import DEFAULT_SOCKET, DevicePools, PodResourcesError, pod_devices

SRIOV_A = "nokia.k8s.io/sriov_ens1f0"
SRIOV_B = "nokia.k8s.io/sriov_ens1f1"

PODS = [
    FakePod("other", "web", [("app", {SRIOV_A: ["0000:03:02.7"]})]),
    FakePod(
        "tenant",
        "dpdk",
        [
            ("init", {SRIOV_A: ["0000:03:02.0", "0000:03:02.1"]}),
            ("app", {SRIOV_B: ["0000:04:02.3"], SRIOV_A: ["0000:03:02.5"], "example.com/gpu": ["gpu-1"]}),
            ("sidecar", {}),
        ],
    ),
    # The same pod name in another namespace: must not be mixed in.
    FakePod("elsewhere", "dpdk", [("app", {SRIOV_A: ["0000:03:03.0"]})]),
    FakePod("tenant", "plain", [("app", {})]),
]


@pytest.fixture
def kubelet(tmp_path: Path) -> Iterator[FakePodResources]:
    with FakePodResources(tmp_path / "kubelet.sock", PODS) as server:
        yield server
    assert not (tmp_path / "kubelet.sock").exists()


def test_devices_of_the_pod_only_in_container_then_device_order(kubelet: FakePodResources) -> None:
    devices = pod_devices("tenant", "dpdk", kubelet.socket_path, 5.0)
    assert devices == {
        SRIOV_A: ["0000:03:02.0", "0000:03:02.1", "0000:03:02.5"],
        SRIOV_B: ["0000:04:02.3"],
        "example.com/gpu": ["gpu-1"],
    }
    assert kubelet.calls == {"List": 1}


def test_pools_hand_out_first_listed_first_then_refuse(kubelet: FakePodResources) -> None:
    pools = DevicePools(pod_devices("tenant", "dpdk", kubelet.socket_path, 5.0))
    assert [pools.take(SRIOV_A) for _ in range(3)] == ["0000:03:02.0", "0000:03:02.1", "0000:03:02.5"]
    assert pools.take(SRIOV_B) == "0000:04:02.3"
    with pytest.raises(PodResourcesError, match=f"device pool {SRIOV_A} is empty: all 3 device"):
        pools.take(SRIOV_A)
    with pytest.raises(PodResourcesError, match=f"device pool {SRIOV_B} is empty: all 1 device"):
        pools.take(SRIOV_B)


def test_missing_pool_names_the_pool_and_what_the_pod_has() -> None:
    pools = DevicePools({SRIOV_A: ["0000:03:02.0"]})
    with pytest.raises(PodResourcesError, match=f"device pool {SRIOV_B}: .*its resources: {SRIOV_A}"):
        pools.take(SRIOV_B)
    assert pools.take(SRIOV_A) == "0000:03:02.0"  # a refusal takes nothing


def test_pools_copy_their_input() -> None:
    devices = {SRIOV_A: ["0000:03:02.0", "0000:03:02.1"]}
    pools = DevicePools(devices)
    assert pools.take(SRIOV_A) == "0000:03:02.0"
    assert devices == {SRIOV_A: ["0000:03:02.0", "0000:03:02.1"]}


@pytest.mark.parametrize(("namespace", "pod"), [("tenant", "plain"), ("tenant", "absent")])
def test_pod_without_devices(kubelet: FakePodResources, namespace: str, pod: str) -> None:
    with pytest.raises(PodResourcesError, match=f"no devices allocated to pod {namespace}/{pod} .*{kubelet.socket_path}"):
        pod_devices(namespace, pod, kubelet.socket_path, 5.0)


def test_no_socket_names_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "pod-resources" / "kubelet.sock")
    with pytest.raises(PodResourcesError, match=f"socket {missing} does not exist.*tenant/dpdk") as raised:
        pod_devices("tenant", "dpdk", missing, 5.0)
    assert isinstance(raised.value, DanmError)


def test_socket_without_server(tmp_path: Path) -> None:
    """A socket file left by a kubelet that is gone: the call fails fast, naming the socket."""
    stale = tmp_path / "kubelet.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(stale))  # bound, never listening, closed: the file stays, nobody answers
    with pytest.raises(PodResourcesError, match=f"List on {stale} failed for pod tenant/dpdk: UNAVAILABLE"):
        pod_devices("tenant", "dpdk", str(stale), 5.0)


def test_server_error_names_status_and_socket(kubelet: FakePodResources) -> None:
    kubelet.fail_with = grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(
        PodResourcesError,
        match=f"List on {kubelet.socket_path} failed for pod tenant/dpdk: PERMISSION_DENIED: fake kubelet told to fail",
    ):
        pod_devices("tenant", "dpdk", kubelet.socket_path, 5.0)


def test_default_socket_is_kubelets() -> None:
    assert DEFAULT_SOCKET == "/var/lib/kubelet/pod-resources/kubelet.sock"


def test_import_loads_no_grpc() -> None:
    """The CNI path imports the module always, grpc only when a pod has a device network."""
    code = (
        "import sys, danm.podresources\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'google') "
        "or m.startswith('danm.podresources_v1'))\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
