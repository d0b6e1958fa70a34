"""Test stand-ins for an SR-IOV node: a fake sysfs tree and a fake kubelet PodResources server.

`FakeSysfs` lays out, under a temporary root, what danm.sriov reads under /sys, the way the
kernel does it: device directories under devices/pci0000:00/, symlinks to them from
bus/pci/devices/, a PF with net/<pf name>/ and relative virtfnN links to its VFs, and per VF a
physfn link back and a driver link into bus/pci/drivers/.

`FakePodResources` is a real grpc server (the generated v1 PodResourcesLister servicer) on a
unix socket, answering List (and Get) from the pods it was given, as kubelet would. Use both as
context managers or call close(); neither leaves anything behind but the files under the
caller's temporary directory.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import grpc

from danm import podresources_v1_pb2 as pb
from danm import podresources_v1_pb2_grpc as pb_grpc
from danm.sriov import mac_of_vf

PCI_BUS: str = "pci0000:00"


@dataclass(frozen=True)
class FakeVf:
    """A VF: its PCI address and the driver it is bound to ("" for none)."""

    pci: str
    driver: str = "ixgbevf"


class FakeSysfs:
    """A sysfs tree under ``root``; pass ``str(root)`` as danm's sysfs root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "devices" / PCI_BUS).mkdir(parents=True, exist_ok=True)
        (root / "bus" / "pci" / "devices").mkdir(parents=True, exist_ok=True)
        (root / "bus" / "pci" / "drivers").mkdir(parents=True, exist_ok=True)

    def __str__(self) -> str:
        return str(self.root)

    def device_dir(self, pci: str) -> Path:
        return self.root / "devices" / PCI_BUS / pci

    def _add_device(self, pci: str, driver: str) -> Path:
        directory = self.device_dir(pci)
        directory.mkdir()
        (self.root / "bus" / "pci" / "devices" / pci).symlink_to(f"../../../devices/{PCI_BUS}/{pci}")
        if driver:
            (self.root / "bus" / "pci" / "drivers" / driver).mkdir(exist_ok=True)
            (directory / "driver").symlink_to(f"../../../bus/pci/drivers/{driver}")
        return directory

    def add_pf(self, pf: str, pci: str, vfs: Sequence[FakeVf], driver: str = "ixgbe") -> None:
        """A PF netdev ``pf`` at ``pci`` whose virtfn0..N-1 are ``vfs`` in order."""
        directory = self._add_device(pci, driver)
        (directory / "net" / pf).mkdir(parents=True)
        (directory / "sriov_numvfs").write_text(f"{len(vfs)}\n")
        for number, vf in enumerate(vfs):
            vf_dir = self._add_device(vf.pci, vf.driver)
            (vf_dir / "physfn").symlink_to(f"../{pci}")
            (directory / f"virtfn{number}").symlink_to(f"../{vf.pci}")

    def add_plain_device(self, pci: str, driver: str = "e1000e") -> None:
        """A PCI device that is no VF (no physfn)."""
        self._add_device(pci, driver)


@dataclass
class FakePod:
    """A pod as the PodResources API reports it: containers in order, each with
    resource name -> device IDs (in device-plugin order)."""

    namespace: str
    name: str
    containers: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)

    def message(self) -> pb.PodResources:
        return pb.PodResources(
            name=self.name,
            namespace=self.namespace,
            containers=[
                pb.ContainerResources(
                    name=container,
                    devices=[
                        pb.ContainerDevices(resource_name=resource, device_ids=ids)
                        for resource, ids in devices.items()
                    ],
                    cpu_ids=[2, 3],
                )
                for container, devices in self.containers
            ],
        )


class _Servicer(pb_grpc.PodResourcesListerServicer):
    def __init__(self, server: FakePodResources) -> None:
        self.server = server

    def List(self, request: pb.ListPodResourcesRequest, context: grpc.ServicerContext) -> pb.ListPodResourcesResponse:
        self.server.record("List")
        if self.server.fail_with is not None:
            context.abort(self.server.fail_with, "fake kubelet told to fail")
        return pb.ListPodResourcesResponse(pod_resources=[pod.message() for pod in self.server.pods])

    def Get(self, request: pb.GetPodResourcesRequest, context: grpc.ServicerContext) -> pb.GetPodResourcesResponse:
        self.server.record("Get")
        for pod in self.server.pods:
            if (pod.namespace, pod.name) == (request.pod_namespace, request.pod_name):
                return pb.GetPodResourcesResponse(pod_resources=pod.message())
        context.abort(grpc.StatusCode.NOT_FOUND, f"pod {request.pod_namespace}/{request.pod_name} not found")

    def GetAllocatableResources(
        self, request: pb.AllocatableResourcesRequest, context: grpc.ServicerContext
    ) -> pb.AllocatableResourcesResponse:
        self.server.record("GetAllocatableResources")
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not served by the fake kubelet")


class FakePodResources:
    """kubelet's PodResources v1 service on ``socket_path`` (a unix socket it creates).

    ``pods`` may be changed between calls; ``fail_with`` makes every List fail with that status;
    ``calls`` counts the RPCs served, by method name."""

    def __init__(self, socket_path: str | Path, pods: Sequence[FakePod] = ()) -> None:
        self.socket_path = str(socket_path)
        self.pods: list[FakePod] = list(pods)
        self.fail_with: grpc.StatusCode | None = None
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        pb_grpc.add_PodResourcesListerServicer_to_server(_Servicer(self), self._server)
        if self._server.add_insecure_port("unix:" + self.socket_path) == 0:
            raise AssertionError(f"fake PodResources server cannot listen on {self.socket_path}")
        self._server.start()

    def record(self, method: str) -> None:
        with self._lock:
            self.calls[method] = self.calls.get(method, 0) + 1

    def close(self) -> None:
        self._server.stop(grace=None).wait()
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def __enter__(self) -> FakePodResources:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class FakeVfMacs:
    """A `danm.sriov.VfMacProvider` over fixed VF tables (PF name -> MACs, VF 0 first), as the
    PF's netlink VF table would give them; looked up with danm's own `mac_of_vf`, as
    `NetlinkVfMacs` does."""

    def __init__(self, tables: dict[str, list[str]]) -> None:
        self.tables = tables
        self.asked: list[tuple[str, int]] = []

    def vf_mac(self, pf: str, vf: int) -> str:
        self.asked.append((pf, vf))
        return mac_of_vf(self.tables.get(pf, []), vf)
