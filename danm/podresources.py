"""The devices kubelet allocated to a pod, from its PodResources API (reference §2.7), and the
per-ADD pools interfaces on device (SR-IOV) networks take them from.

The client speaks gRPC (v1 ``PodResourcesLister/List``) over kubelet's unix socket through grpcio
and the code generated from the published proto (danm/proto/podresources_v1.proto). grpc and the
generated modules are imported inside `pod_devices` only: the CNI path pays for them (~100 ms)
only when a pod actually has an interface on a device network.

Order (reference §11 item 34): the original popped the *last* device ID of a pool. Here a pool
hands out its IDs first-listed first: containers in the order kubelet lists them, each
container's IDs in device-plugin order. So a pod's first SR-IOV interface gets the first VF
kubelet allocated to it.
"""

from __future__ import annotations

import os
import threading
from typing import Final

from danm.errors import DanmError

DEFAULT_SOCKET: Final = "/var/lib/kubelet/pod-resources/kubelet.sock"
MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024
"""kubelet's own PodResources clients allow 16 MiB (grpc's default of 4 MiB is too small for a
List on a busy node: the response covers every pod of the node)."""


class PodResourcesError(DanmError):
    """The pod's devices could not be had: the message names the socket, the pod or the pool."""


def pod_devices(namespace: str, pod: str, socket_path: str, timeout: float) -> dict[str, list[str]]:
    """Resource name -> device IDs kubelet allocated to the pod, over all its containers
    (container order, then each container's device order)."""
    if not os.path.exists(socket_path):
        raise PodResourcesError(
            f"kubelet PodResources socket {socket_path} does not exist: cannot get the devices of "
            f"pod {namespace}/{pod}"
        )
    import grpc

    from danm import podresources_v1_pb2, podresources_v1_pb2_grpc

    channel = grpc.insecure_channel(
        "unix:" + socket_path,
        options=[("grpc.max_receive_message_length", MAX_RESPONSE_BYTES)],
    )
    try:
        stub = podresources_v1_pb2_grpc.PodResourcesListerStub(channel)
        try:
            response = stub.List(podresources_v1_pb2.ListPodResourcesRequest(), timeout=timeout)
        except grpc.RpcError as err:
            raise PodResourcesError(
                f"kubelet PodResources List on {socket_path} failed for pod {namespace}/{pod}: "
                f"{_rpc_reason(err)}"
            ) from err
    finally:
        channel.close()

    devices: dict[str, list[str]] = {}
    count = 0
    for resources in response.pod_resources:
        if resources.name != pod or resources.namespace != namespace:
            continue
        for container in resources.containers:
            for allocated in container.devices:
                ids = devices.setdefault(allocated.resource_name, [])
                ids.extend(allocated.device_ids)
                count += len(allocated.device_ids)
    if count == 0:
        raise PodResourcesError(
            f"no devices allocated to pod {namespace}/{pod} according to kubelet PodResources "
            f"on {socket_path}"
        )
    return devices


def _rpc_reason(err: BaseException) -> str:
    """``CODE: details`` of a failed call (grpc raises RpcErrors that are also grpc.Calls)."""
    import grpc

    if isinstance(err, grpc.Call):
        code = err.code()
        name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        return f"{name}: {err.details()}"
    return str(err) or type(err).__name__


class DevicePools:
    """The device IDs of one ADD's pod, shared by its interfaces: each interface on a device
    network takes one ID of its network's ``device_pool``, first listed first (§11 item 34)."""

    def __init__(self, devices: dict[str, list[str]]) -> None:
        self._remaining: dict[str, list[str]] = {pool: list(ids) for pool, ids in devices.items()}
        self._allocated: dict[str, int] = {pool: len(ids) for pool, ids in devices.items()}
        self._lock = threading.Lock()

    def take(self, pool: str) -> str:
        """The next device ID of ``pool``; it is not handed out again."""
        with self._lock:
            remaining = self._remaining.get(pool)
            if remaining is None:
                pools = ", ".join(sorted(self._remaining)) or "none"
                raise PodResourcesError(
                    f"device pool {pool}: the pod has no devices of this resource "
                    f"(its resources: {pools})"
                )
            if not remaining:
                raise PodResourcesError(
                    f"device pool {pool} is empty: all {self._allocated[pool]} device(s) of it "
                    f"allocated to the pod are taken by its other interfaces"
                )
            return remaining.pop(0)
