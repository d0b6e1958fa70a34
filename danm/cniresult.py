"""CNI results, version-neutral: parse any version, merge danm's per-interface results, render.

Pure: bytes in, bytes out, no I/O. The CNI meta-plugin uses it for delegate results (§4.5 of the
reference), for its own merged ADD result (§2.12) and for the result version it must emit.

* ``negotiate_version`` picks the version to emit (``cniVersion``, or ``cniVersions`` of CNI 1.1).
* ``parse_result`` reads a result of any CNI version (0.1.0/0.2.0 ``ip4``/``ip6`` too, converted
  as libcni converts them) into ``Result``; bad input raises ``ResultDecodeError``.
* ``render`` encodes a ``Result`` for one of danm's spec versions, dropping what it lacks.
* ``merge`` builds danm's merged result; ``to_endpoint_addresses`` gives a DanmEp's addresses.

The wire Structs live in danm/types.py (Structs defined in compiled code break, see STYLE §5);
the classes here are plain dataclasses that mypyc compiles to native classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import ip_address, ip_interface
from typing import Any, Final

import msgspec

from danm.cni import ERR_INCOMPATIBLE_VERSION, SPEC_VERSIONS, CniFailure
from danm.errors import DanmError
from danm.types import (
    CniDns,
    CniInterface,
    CniRoute,
    IpConfigV03,
    IpConfigV1,
    ResultV03,
    ResultV1,
)

# Result formats by the shape of their ``ips``.
LEGACY_VERSIONS: Final = ("", "0.1.0", "0.2.0")  # ip4/ip6 objects; "" = no cniVersion (0.1.0)
V03_VERSIONS: Final = ("0.3.0", "0.3.1", "0.4.0")  # ips with "version"
V1_VERSIONS: Final = ("1.0.0", "1.1.0")  # ips without "version"
V11_FIELDS_FROM: Final = "1.1.0"  # interface mtu/socketPath/pciID, route mtu/advmss/...

_JSON_DECODER: Final = msgspec.json.Decoder()
_JSON_ENCODER: Final = msgspec.json.Encoder()


class ResultDecodeError(DanmError):
    """A plugin's stdout is not a CNI result: empty, not JSON, wrong shape or bad addresses.

    The original danm treated such output as an empty successful result (§4.5); that silently
    records an interface without addresses and hides a broken delegate, so here it is an error.
    The meta-plugin maps it to ERR_DELEGATE (a delegate's output) or ERR_DECODE (a prevResult).
    """


@dataclass
class Interface:
    name: str
    mac: str = ""
    sandbox: str = ""  # netns path; empty for an interface on the host
    mtu: int = 0  # 1.1.0 and later, like the three below; 0 / "" = absent
    socket_path: str = ""
    pci_id: str = ""


@dataclass
class IpConfig:
    address: str  # CIDR form, e.g. "10.0.0.5/24"
    gateway: str = ""
    interface: int | None = None  # index into Result.interfaces; None = not given

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.address


@dataclass
class Route:
    dst: str
    gw: str = ""
    mtu: int = 0  # 1.1.0 and later, like the four below
    advmss: int = 0
    priority: int = 0
    table: int | None = None
    scope: int | None = None


@dataclass
class Dns:
    nameservers: list[str] = field(default_factory=list)
    domain: str = ""
    search: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


@dataclass
class Result:
    """A CNI result independent of its wire version. ``dns`` None = absent (not even ``{}``)."""

    interfaces: list[Interface] = field(default_factory=list)
    ips: list[IpConfig] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    dns: Dns | None = None


# --------------------------------------------------------------------------------------------
# Version negotiation


def negotiate_version(config_version: str, config_versions: list[str] | None) -> str:
    """The result version to emit for a network config.

    ``cniVersion`` wins when set: with a CNI 1.1 ``cniVersions`` list the runtime has already
    chosen (libcni writes its choice into ``cniVersion``), and answering in a newer version than
    the runtime chose could break it. Without ``cniVersion``, the highest entry of
    ``cniVersions`` that danm supports is taken. Anything unsupported raises CniFailure(1).
    """
    if config_version:
        if config_version in SPEC_VERSIONS:
            return config_version
        raise CniFailure(
            ERR_INCOMPATIBLE_VERSION,
            f"incompatible CNI versions: config is {config_version!r}",
            "danm supports " + ", ".join(SPEC_VERSIONS),
        )
    offered = config_versions or []
    supported = [version for version in SPEC_VERSIONS if version in offered]
    if supported:
        return supported[-1]  # SPEC_VERSIONS is oldest first
    raise CniFailure(
        ERR_INCOMPATIBLE_VERSION,
        "incompatible CNI versions: config offers "
        + (", ".join(repr(version) for version in offered) if offered else "no cniVersion"),
        "danm supports " + ", ".join(SPEC_VERSIONS),
    )


# --------------------------------------------------------------------------------------------
# Parsing


def parse_result(data: bytes) -> Result:
    """Any CNI version's result; raises ResultDecodeError for empty or invalid input."""
    if not data.strip():
        raise ResultDecodeError("empty CNI result")
    try:
        document = _JSON_DECODER.decode(data)
    except msgspec.DecodeError as decode_error:
        raise ResultDecodeError(f"CNI result is not JSON: {decode_error}") from decode_error
    if not isinstance(document, dict):
        raise ResultDecodeError("CNI result is not a JSON object")
    version = document.get("cniVersion", "")
    if not isinstance(version, str):
        raise ResultDecodeError("CNI result has a non-string cniVersion")
    if version in LEGACY_VERSIONS:
        result = _from_legacy(document)
    elif version in V03_VERSIONS or version in V1_VERSIONS:
        # Both formats decode as ResultV1: the ips' "version" of 0.3.x/0.4.0 is redundant with
        # the address (render derives it back), and unknown fields are ignored.
        try:
            wire = msgspec.convert(document, ResultV1)
        except msgspec.ValidationError as validation_error:
            raise ResultDecodeError(
                f"invalid CNI {version} result: {validation_error}"
            ) from validation_error
        result = _from_wire(wire)
    else:
        raise ResultDecodeError(f"unsupported CNI result version {version!r}")
    _validate(result)
    return result


def _from_wire(wire: ResultV1) -> Result:
    return Result(
        interfaces=[
            Interface(
                name=wire_interface.name,
                mac=wire_interface.mac,
                sandbox=wire_interface.sandbox,
                mtu=wire_interface.mtu,
                socket_path=wire_interface.socket_path,
                pci_id=wire_interface.pci_id,
            )
            for wire_interface in wire.interfaces or []
        ],
        ips=[
            IpConfig(address=wire_ip.address, gateway=wire_ip.gateway, interface=wire_ip.interface)
            for wire_ip in wire.ips or []
        ],
        routes=[_route_from_wire(wire_route) for wire_route in wire.routes or []],
        dns=None if wire.dns is None else _dns_from_wire(wire.dns),
    )


def _route_from_wire(wire: CniRoute) -> Route:
    return Route(
        dst=wire.dst,
        gw=wire.gw,
        mtu=wire.mtu,
        advmss=wire.advmss,
        priority=wire.priority,
        table=wire.table,
        scope=wire.scope,
    )


def _dns_from_wire(wire: CniDns) -> Dns:
    return Dns(
        nameservers=list(wire.nameservers or []),
        domain=wire.domain,
        search=list(wire.search or []),
        options=list(wire.options or []),
    )


def _from_legacy(document: dict[str, Any]) -> Result:
    """0.1.0/0.2.0: ``ip4``/``ip6`` objects with ``ip``, ``gateway``, ``routes``, as libcni's
    conversion does: one ``ips`` entry each (no interface index), routes concatenated."""
    result = Result()
    for key in ("ip4", "ip6"):
        section = document.get(key)
        if section is None:
            continue
        if not isinstance(section, dict) or not isinstance(section.get("ip"), str):
            raise ResultDecodeError(f"invalid legacy CNI result: {key} needs an 'ip' string")
        gateway = section.get("gateway", "")
        if not isinstance(gateway, str):
            raise ResultDecodeError(f"invalid legacy CNI result: {key}.gateway is not a string")
        result.ips.append(IpConfig(address=section["ip"], gateway=gateway))
        try:
            routes = msgspec.convert(section.get("routes") or [], list[CniRoute])
        except msgspec.ValidationError as route_error:
            raise ResultDecodeError(
                f"invalid legacy CNI result: {key}.routes: {route_error}"
            ) from route_error
        result.routes.extend(_route_from_wire(route) for route in routes)
    dns = document.get("dns")
    if dns is not None:
        try:
            result.dns = _dns_from_wire(msgspec.convert(dns, CniDns))
        except msgspec.ValidationError as dns_error:
            raise ResultDecodeError(f"invalid legacy CNI result: dns: {dns_error}") from dns_error
    return result


def _validate(result: Result) -> None:
    """Addresses in CIDR form, gateways are addresses, interface indices in range."""
    count = len(result.interfaces)
    for ip in result.ips:
        try:
            if "/" not in ip.address:
                raise ValueError("no prefix length")
            ip_interface(ip.address)
            if ip.gateway:
                ip_address(ip.gateway)
        except ValueError as address_error:
            raise ResultDecodeError(
                f"invalid address {ip.address!r} / gateway {ip.gateway!r}: {address_error}"
            ) from address_error
        if ip.interface is not None and not 0 <= ip.interface < count:
            raise ResultDecodeError(
                f"ip {ip.address} names interface {ip.interface}, but there are {count}"
            )


# --------------------------------------------------------------------------------------------
# Rendering


def render(result: Result, version: str) -> bytes:
    """``result`` as JSON for one of danm's spec versions; fields the version lacks are dropped.

    Empty lists are omitted (libcni's ``omitempty``); ``dns`` is written when not None.
    """
    if version not in SPEC_VERSIONS:
        raise CniFailure(ERR_INCOMPATIBLE_VERSION, f"cannot render a CNI {version!r} result")
    full = version == V11_FIELDS_FROM
    interfaces = [_interface_to_wire(interface, full) for interface in result.interfaces] or None
    routes = [_route_to_wire(route, full) for route in result.routes] or None
    dns = None if result.dns is None else _dns_to_wire(result.dns)
    if version in V03_VERSIONS:
        ips03 = [
            IpConfigV03(
                version="6" if ip.is_ipv6 else "4",
                address=ip.address,
                gateway=ip.gateway,
                interface=ip.interface,
            )
            for ip in result.ips
        ]
        return _JSON_ENCODER.encode(
            ResultV03(
                cni_version=version,
                interfaces=interfaces,
                ips=ips03 or None,
                routes=routes,
                dns=dns,
            )
        )
    ips1 = [
        IpConfigV1(address=ip.address, gateway=ip.gateway, interface=ip.interface)
        for ip in result.ips
    ]
    return _JSON_ENCODER.encode(
        ResultV1(cni_version=version, interfaces=interfaces, ips=ips1 or None, routes=routes, dns=dns)
    )


def _interface_to_wire(interface: Interface, full: bool) -> CniInterface:
    if not full:
        return CniInterface(name=interface.name, mac=interface.mac, sandbox=interface.sandbox)
    return CniInterface(
        name=interface.name,
        mac=interface.mac,
        sandbox=interface.sandbox,
        mtu=interface.mtu,
        socket_path=interface.socket_path,
        pci_id=interface.pci_id,
    )


def _route_to_wire(route: Route, full: bool) -> CniRoute:
    if not full:
        return CniRoute(dst=route.dst, gw=route.gw)
    return CniRoute(
        dst=route.dst,
        gw=route.gw,
        mtu=route.mtu,
        advmss=route.advmss,
        priority=route.priority,
        table=route.table,
        scope=route.scope,
    )


def _dns_to_wire(dns: Dns) -> CniDns:
    return CniDns(
        nameservers=list(dns.nameservers) or None,
        domain=dns.domain,
        search=list(dns.search) or None,
        options=list(dns.options) or None,
    )


# --------------------------------------------------------------------------------------------
# Merging and endpoint addresses


def merge(results: list[tuple[str, Result]], sandbox: str) -> Result:
    """danm's merged ADD result from ``(ifname, result)`` per pod interface.

    * Results for ``eth0`` first, then the others in the given order (§2.12).
    * Interfaces concatenated. Each result's interface named its ifname, and every interface a
      plugin reported inside a sandbox, gets ``sandbox`` (the netns path; the original wrote the
      container id). Interfaces reported with an empty sandbox are host-side (a bridge's veth
      peer) and stay so, as the CNI spec requires.
    * IP ``interface`` indices renumbered into the merged list (the original kept the delegate's
      own index, §11.16); an IP without one gets the index of its result's ifname interface,
      if that result has one.
    * Routes concatenated; DNS merged: lists de-duplicated in order, the first non-empty domain.
      The merged result always carries ``dns`` (``{}`` when empty), as the original printed.

    The inputs are not modified. Raises ValueError for an IP whose index is out of range.
    """
    ordered = [entry for entry in results if entry[0] == "eth0"]
    ordered += [entry for entry in results if entry[0] != "eth0"]
    dns = Dns()
    merged = Result(dns=dns)
    for ifname, result in ordered:
        offset = len(merged.interfaces)
        own_index: int | None = None
        for position, interface in enumerate(result.interfaces):
            in_pod = interface.name == ifname or interface.sandbox != ""
            if interface.name == ifname and own_index is None:
                own_index = position
            merged.interfaces.append(
                Interface(
                    name=interface.name,
                    mac=interface.mac,
                    sandbox=sandbox if in_pod else "",
                    mtu=interface.mtu,
                    socket_path=interface.socket_path,
                    pci_id=interface.pci_id,
                )
            )
        for ip in result.ips:
            index = ip.interface if ip.interface is not None else own_index
            if index is not None and not 0 <= index < len(result.interfaces):
                raise ValueError(
                    f"{ifname}: ip {ip.address} names interface {index}, "
                    f"but the result has {len(result.interfaces)}"
                )
            merged.ips.append(
                IpConfig(
                    address=ip.address,
                    gateway=ip.gateway,
                    interface=None if index is None else offset + index,
                )
            )
        merged.routes.extend(
            Route(
                dst=route.dst,
                gw=route.gw,
                mtu=route.mtu,
                advmss=route.advmss,
                priority=route.priority,
                table=route.table,
                scope=route.scope,
            )
            for route in result.routes
        )
        if result.dns is not None:
            _merge_dns(dns, result.dns)
    return merged


def _merge_dns(into: Dns, source: Dns) -> None:
    _extend_unique(into.nameservers, source.nameservers)
    _extend_unique(into.search, source.search)
    _extend_unique(into.options, source.options)
    if not into.domain:
        into.domain = source.domain


def _extend_unique(into: list[str], values: list[str]) -> None:
    for value in values:
        if value not in into:
            into.append(value)


def to_endpoint_addresses(result: Result) -> tuple[str, str]:
    """The last IPv4 and the last IPv6 address of a delegate's result in CIDR form, "" when
    absent (§4.5: the DanmEp's ``Address`` and ``AddressIPv6``)."""
    ipv4 = ""
    ipv6 = ""
    for ip in result.ips:
        if ip.is_ipv6:
            ipv6 = ip.address
        else:
            ipv4 = ip.address
    return ipv4, ipv6
