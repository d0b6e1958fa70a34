"""The pod's ``k8s.v1.cni.cncf.io/network-status`` annotation (the shape Multus writes,
landscape §1.4): one entry per danm interface, so Multus-era tools see all of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from danm import kube
from danm.types import KIND_CLUSTERNETWORK, NETWORK_STATUS_ANNOTATION, NetworkStatus, Pod

if TYPE_CHECKING:
    from danm.attach import Attachment

_DEFAULT_ROUTES = ("0.0.0.0/0", "::/0")


def entries(attachments: list[Attachment]) -> list[NetworkStatus]:
    """eth0 first; ``ips`` bare addresses; ``gateway`` the default routes' next hops."""
    ordered = sorted(attachments, key=lambda attachment: (attachment.ifname != "eth0", attachment.index))
    result = []
    for attachment in ordered:
        network = attachment.network
        name = network.metadata.name
        if attachment.kind != KIND_CLUSTERNETWORK:
            name = f"{network.metadata.namespace}/{name}"
        options = network.spec.options
        ips = [address.split("/", 1)[0] for address in (attachment.ip4, attachment.ip6) if "/" in address]
        gateways = [
            gateway
            for address, routes in ((attachment.ip4, options.routes), (attachment.ip6, options.routes6))
            if "/" in address
            for destination, gateway in sorted((routes or {}).items())
            if destination in _DEFAULT_ROUTES
        ]
        link = attachment.link
        result.append(
            NetworkStatus(
                name=name,
                interface=attachment.ifname,
                ips=ips or None,
                mac=link.mac if link is not None else "",
                mtu=link.mtu if link is not None else 0,
                default=attachment.ifname == "eth0",
                gateway=gateways or None,
            )
        )
    return result


def write(client: kube.ApiClient, pod: Pod, statuses: list[NetworkStatus], deadline: float) -> None:
    """Merge-patch the annotation through pods/status, where Multus writes it."""
    value = msgspec.json.encode(statuses).decode()
    patch: kube.JsonObject = {"metadata": {"annotations": {NETWORK_STATUS_ANNOTATION: value}}}
    client.patch(
        kube.PODS, pod.metadata.namespace, pod.metadata.name, patch, dict, subresource="status", deadline=deadline
    )

