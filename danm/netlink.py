"""The kernel side of pod interfaces: the built-in IPVLAN link and the configuration every pod
interface gets (reference §3.2-3.7), through pyroute2 on netlink sockets bound to a namespace.

Namespaces. Python 3.11 has no ``os.setns`` and setns(2) switches only the calling thread, so
this module enters a pod namespace with libc ``setns`` in the current thread, does there only
what has to be done there -- create sockets (a socket stays bound to the namespace it was created
in) and read/write ``/proc/sys/net`` (resolved against the calling thread's namespace) -- and
switches straight back to the thread's own namespace. All netlink requests then go through
``IPRoute(use_socket=...)`` on such a socket. pyroute2's ``IPRoute(netns=...)`` is not used: it
forks a helper process (slow, and unsafe in a multi-threaded process) and creates missing
namespaces by default. A missing namespace is `NetnsMissing`, never created. If switching back
fails, `ThreadNetnsLost` (a BaseException) is raised: that thread must not do anything else.

Callers must not run these functions on a thread with a running asyncio loop: the synchronous
IPRoute runs its own loop in the calling thread. pyroute2 (~200 ms to import) and ctypes are
imported only inside the functions that need them, never on module import.

Defects of the original that are fixed here (reference §11 items 17, 18, 27): the IPv6 sysctls
(``ndisc_notify`` among them) are written before the link goes up; besides one gratuitous ARP,
one unsolicited IPv6 neighbour advertisement is sent; the policy rule's source is the pod
address alone (/32, /128), at the deterministic priority `rule_priority` (table); routes
replace an existing route to the same destination instead of failing; IPv6 sysctls are skipped
when the pod namespace has no IPv6 (no ``/proc/sys/net/ipv6``).

Kept from the original: route entries whose destination or gateway does not parse are skipped
(now with a warning in `LinkInfo.warnings`), and DEL removes only the link: the policy rules of
the pod address live in the pod namespace and go with it when the runtime deletes it.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from ipaddress import IPv4Interface, IPv6Interface, ip_address, ip_interface, ip_network
from typing import TYPE_CHECKING, Final

from danm.errors import DanmError

if TYPE_CHECKING:
    from ctypes import CDLL
    from types import TracebackType

    from pyroute2 import IPRoute
    from pyroute2.netlink import nlmsg_base
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

# --------------------------------------------------------------------------------------------
# Constants

RULE_PRIORITY_BASE: Final = 1000
"""Policy rules of pod addresses sit at RULE_PRIORITY_BASE + table: below the main (32766) and
default (32767) rules, above the local one (0), and leaving 1-999 to administrators' rules that
must win. One priority per table, so a CHECK can predict it."""

MAX_RULE_TABLE: Final = 32765 - RULE_PRIORITY_BASE
RESERVED_TABLES: Final = (253, 254, 255)  # default, main, local
MAIN_TABLE: Final = 254
LOCAL_TABLE: Final = 255
IFNAMSIZ_MAX: Final = 15  # IFNAMSIZ (16) minus the terminating NUL

CLONE_NEWNET: Final = 0x40000000
THREAD_NETNS: Final = "/proc/thread-self/ns/net"
IPV6_SYSCTLS: Final = "/proc/sys/net/ipv6"
IPVLAN_MODE_L2: Final = 0  # the kernel's IPVLAN_MODE_L2; pyroute2 0.9.7 takes the integer
IFA_F_NODAD: Final = 0x02
IFF_UP: Final = 0x1
RT_SCOPE_UNIVERSE: Final = 0
RTN_UNICAST: Final = 1

ETH_P_ARP: Final = 0x0806
ETH_P_IP: Final = 0x0800
ARPHRD_ETHER: Final = 1
ARPOP_REQUEST: Final = 1
ICMPV6_NEIGHBOR_ADVERT: Final = 136
NA_FLAG_OVERRIDE: Final = 0x20000000
ND_OPT_TARGET_LL_ADDR: Final = 2
ALL_NODES: Final = "ff02::1"
BROADCAST_MAC: Final = b"\xff" * 6


# --------------------------------------------------------------------------------------------
# Errors


class LinkError(DanmError):
    """A kernel operation on a pod link failed; the message names the operation, the device and
    the namespace, which are also kept as attributes."""

    def __init__(self, message: str, device: str = "", netns: str = "") -> None:
        super().__init__(message)
        self.device = device
        self.netns = netns


class NetnsMissing(LinkError):
    """The namespace path does not exist or is not a network namespace."""


class ParentMissing(LinkError):
    """The host parent device of an IPVLAN link does not exist."""


class ThreadNetnsLost(BaseException):
    """The calling thread could not switch back to its own network namespace.

    A BaseException on purpose: ordinary ``except Exception`` handlers must not swallow it and
    carry on, since everything this thread would do next lands in the wrong namespace."""


# --------------------------------------------------------------------------------------------
# Pure part: what to build, names, priorities


def parent_device(host_device: str, network_id: str, vlan: int, vxlan: int) -> str:
    """The host device an IPVLAN (or MACVLAN) link hangs off (§3.2); netwatcher creates the
    VxLAN and VLAN ones under these names."""
    if vxlan:
        return "vx_" + network_id
    if vlan:
        return f"{network_id}.{vlan}"
    return host_device


def rule_priority(table: int) -> int:
    """The priority of the ``from <pod address>`` rule of routing table ``table``."""
    if table < 1 or table > MAX_RULE_TABLE:
        raise LinkError(f"rt_tables {table} out of range 1..{MAX_RULE_TABLE} for a policy rule")
    return RULE_PRIORITY_BASE + table


def kernel_has_ipv6() -> bool:
    """Whether the kernel has IPv6 (as seen from the calling thread's namespace)."""
    return os.path.isdir(IPV6_SYSCTLS)


def _check_ifname(field: str, name: str) -> None:
    """The kernel's dev_valid_name rules, checked before anything is created."""
    if not name or len(name) > IFNAMSIZ_MAX:
        raise LinkError(f"{field} {name!r}: interface names are 1..{IFNAMSIZ_MAX} characters", name)
    if name in (".", "..") or any(char == "/" or char == ":" or char.isspace() for char in name):
        raise LinkError(f"{field} {name!r}: interface names cannot be . or .. or contain /, : or spaces", name)


def _optional_routes(routes: dict[str, str] | None) -> dict[str, str] | None:
    return None if routes is None else dict(routes)


class PodLink:
    """What to build for one pod interface; validated on construction, so that nothing is
    created for a request the kernel would refuse on its face."""

    def __init__(
        self,
        name: str,
        temp_name: str,
        ip4: str = "",
        ip6: str = "",
        ipv6_enabled: bool = False,
        routes: dict[str, str] | None = None,
        routes6: dict[str, str] | None = None,
        table: int = 0,
        proutes: dict[str, str] | None = None,
        proutes6: dict[str, str] | None = None,
    ) -> None:
        _check_ifname("interface name", name)
        _check_ifname("temporary interface name", temp_name)
        self.name = name
        self.temp_name = temp_name
        self.ip4 = ip4
        self.ip6 = ip6
        self.address4: IPv4Interface | None = None
        self.address6: IPv6Interface | None = None
        if ip4:
            parsed4 = _parse_interface("ip4", ip4)
            if not isinstance(parsed4, IPv4Interface):
                raise LinkError(f"ip4 {ip4!r} is not an IPv4 address in CIDR form", name)
            self.address4 = parsed4
        if ip6:
            parsed6 = _parse_interface("ip6", ip6)
            if not isinstance(parsed6, IPv6Interface):
                raise LinkError(f"ip6 {ip6!r} is not an IPv6 address in CIDR form", name)
            self.address6 = parsed6
        # An IPv6 address implies IPv6 on the interface, whatever the caller said.
        self.ipv6_enabled = ipv6_enabled or bool(ip6)
        self.routes: dict[str, str] = dict(routes) if routes is not None else {}
        self.routes6: dict[str, str] = dict(routes6) if routes6 is not None else {}
        self.proutes = _optional_routes(proutes)
        self.proutes6 = _optional_routes(proutes6)
        if proutes is not None or proutes6 is not None:  # policy routing will be set up
            if table == 0:
                raise LinkError(f"{name}: proutes need the network's rt_tables, which is 0", name)
            if table in RESERVED_TABLES:
                raise LinkError(f"{name}: rt_tables {table} is a reserved routing table", name)
            rule_priority(table)
        elif table < 0:
            raise LinkError(f"{name}: rt_tables {table} is negative", name)
        self.table = table


def _parse_interface(field: str, value: str) -> IPv4Interface | IPv6Interface:
    if "/" not in value:
        raise LinkError(f"{field} {value!r} is not in CIDR form")
    try:
        return ip_interface(value)
    except ValueError as err:
        raise LinkError(f"{field} {value!r}: {err}") from err


class LinkInfo:
    """The interface as created: final name, index, MAC and MTU in the pod namespace, plus
    what went wrong without failing (announcements, skipped route entries) for the log."""

    def __init__(
        self, name: str, index: int, mac: str, mtu: int, warnings: list[str] | None = None
    ) -> None:
        self.name = name
        self.index = index
        self.mac = mac
        self.mtu = mtu
        self.warnings: list[str] = warnings if warnings is not None else []

    def __repr__(self) -> str:
        return f"LinkInfo(name={self.name!r}, index={self.index}, mac={self.mac!r}, mtu={self.mtu})"


class ObservedLink:
    """A pod interface as the kernel reports it, for CNI CHECK.

    ``addresses``: global-scope addresses in CIDR form. ``routes``: (table, destination CIDR,
    gateway or "") of the unicast routes through this link in every table but ``local``.
    ``rules``: (priority, source CIDR, table) of every policy rule of the namespace."""

    def __init__(
        self,
        name: str,
        index: int,
        mac: str,
        up: bool,
        addresses: set[str],
        routes: set[tuple[int, str, str]],
        rules: set[tuple[int, str, int]],
    ) -> None:
        self.name = name
        self.index = index
        self.mac = mac
        self.up = up
        self.addresses = addresses
        self.routes = routes
        self.rules = rules

    def __repr__(self) -> str:
        return (
            f"ObservedLink(name={self.name!r}, index={self.index}, mac={self.mac!r}, up={self.up}, "
            f"addresses={sorted(self.addresses)}, routes={sorted(self.routes)}, "
            f"rules={sorted(self.rules)})"
        )


def garp_frame(mac: bytes, address: bytes) -> bytes:
    """A broadcast gratuitous ARP request: sender and target protocol address both ours."""
    header = BROADCAST_MAC + mac + struct.pack("!H", ETH_P_ARP)
    body = struct.pack("!HHBBH", ARPHRD_ETHER, ETH_P_IP, 6, 4, ARPOP_REQUEST)
    return header + body + mac + address + b"\x00" * 6 + address


def unsolicited_na(mac: bytes, address: bytes) -> bytes:
    """An ICMPv6 neighbour advertisement with the override flag and our link-layer address;
    the kernel fills in the checksum of ICMPv6 raw sockets."""
    return (
        struct.pack("!BBHI", ICMPV6_NEIGHBOR_ADVERT, 0, 0, NA_FLAG_OVERRIDE)
        + address
        + struct.pack("!BB", ND_OPT_TARGET_LL_ADDR, 1)
        + mac
    )


# --------------------------------------------------------------------------------------------
# Entering namespaces, one thread at a time

_libc_cache: list[CDLL] = []


def _setns(fd: int) -> int:
    """setns(fd, CLONE_NEWNET) for the calling thread; returns 0 or the errno."""
    import ctypes

    if not _libc_cache:
        _libc_cache.append(ctypes.CDLL(None, use_errno=True))
    result: int = _libc_cache[0].setns(fd, CLONE_NEWNET)
    return ctypes.get_errno() if result != 0 else 0


class _Netns:
    """An open pod network namespace (an fd on its path), entered per thread with inside()."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError) as missing:
            raise NetnsMissing(f"network namespace {path} does not exist", netns=path) from missing
        except OSError as other:
            raise LinkError(f"cannot open network namespace {path}: {other.strerror}", netns=path) from other

    def inside(self) -> _Inside:
        return _Inside(self)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _Inside:
    """``with netns.inside():`` runs its body in the namespace, in this thread only."""

    def __init__(self, netns: _Netns) -> None:
        self.netns = netns
        self.saved = -1

    def __enter__(self) -> None:
        saved = os.open(THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)
        code = _setns(self.netns.fd)
        if code != 0:
            os.close(saved)
            path = self.netns.path
            if code == errno.EINVAL:
                raise NetnsMissing(f"{path} is not a network namespace", netns=path)
            raise LinkError(f"cannot enter network namespace {path}: {os.strerror(code)}", netns=path)
        self.saved = saved

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        saved = self.saved
        self.saved = -1
        code = _setns(saved)
        os.close(saved)
        if code != 0:
            raise ThreadNetnsLost(
                f"cannot return from network namespace {self.netns.path}: {os.strerror(code)}"
            )


def _rtnl_socket() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE)


def _iproute(sock: socket.socket) -> IPRoute:
    """pyroute2 on a netlink socket of ours; closing the IPRoute closes the socket."""
    from pyroute2 import IPRoute

    try:
        return IPRoute(use_socket=sock)
    except BaseException:
        sock.close()
        raise


def _reason(err: BaseException) -> str:
    from pyroute2 import NetlinkError

    if isinstance(err, NetlinkError) and err.code > 0:
        return os.strerror(err.code)
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err)


def _failure(operation: str, device: str, netns: str, err: BaseException) -> LinkError:
    """A LinkError naming what failed where, from a NetlinkError or OSError."""
    where = f"network namespace {netns}" if netns else "the host network namespace"
    return LinkError(f"{operation} {device} in {where}: {_reason(err)}", device, netns)


class _Pod:
    """A netlink session bound to a pod namespace, and what was learnt on entering it."""

    def __init__(self, netns: _Netns) -> None:
        self.netns = netns
        with netns.inside():
            sock = _rtnl_socket()
            self.has_ipv6 = os.path.isdir(IPV6_SYSCTLS)
        self.ipr = _iproute(sock)

    def close(self) -> None:
        self.ipr.close()

    def index_of(self, name: str) -> int:
        """The index of the link called ``name``; -1 if there is none."""
        from pyroute2 import NetlinkError

        try:
            found = self.ipr.link_lookup(ifname=name)
        except (NetlinkError, OSError) as err:
            raise _failure("cannot look up", name, self.netns.path, err) from err
        return found[0] if found else -1

    def link(self, index: int, name: str) -> ifinfmsg:
        from pyroute2 import NetlinkError

        try:
            return self.ipr.link("get", index=index)[0]
        except (NetlinkError, OSError) as err:
            raise _failure("cannot read", name, self.netns.path, err) from err


# --------------------------------------------------------------------------------------------
# Configuring a link inside its pod namespace


def _write_sysctls(pod: _Pod, name: str, wanted: list[tuple[str, str]]) -> None:
    _set_sysctls(pod.netns, name, wanted)


def _set_sysctls(netns: _Netns, name: str, wanted: list[tuple[str, str]]) -> None:
    with netns.inside():
        for key, value in wanted:
            path = f"{IPV6_SYSCTLS}/conf/{name}/{key}"
            try:
                with open(path, "w", encoding="ascii") as sysctl:
                    sysctl.write(value)
            except OSError as err:
                raise LinkError(
                    f"cannot set net.ipv6.conf.{name}.{key}={value} in network namespace "
                    f"{netns.path}: {err.strerror}",
                    name,
                    netns.path,
                ) from err


def _ipv6_sysctls(enabled: bool) -> list[tuple[str, str]]:
    if enabled:
        return [("disable_ipv6", "0"), ("autoconf", "0"), ("accept_ra", "0"), ("ndisc_notify", "1")]
    return [("disable_ipv6", "1")]


def _announce(pod: _Pod, link: PodLink, index: int, mac_text: str, warnings: list[str]) -> None:
    """One gratuitous ARP and one unsolicited NA; failures only become warnings, as a pod that
    neighbours learn a little later still works."""
    if link.address4 is None and link.address6 is None:
        return
    try:
        mac = bytes.fromhex(mac_text.replace(":", ""))
    except ValueError:
        mac = b""
    if len(mac) != 6:
        warnings.append(f"{link.name}: no Ethernet address ({mac_text!r}); nothing announced")
        return
    packet: socket.socket | None = None
    icmp6: socket.socket | None = None
    try:
        with pod.netns.inside():
            if link.address4 is not None:
                try:
                    packet = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                except OSError as err4:
                    warnings.append(f"{link.name}: no packet socket for the gratuitous ARP: {err4}")
            if link.address6 is not None:
                try:
                    icmp6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
                except OSError as err6:
                    warnings.append(f"{link.name}: no ICMPv6 socket for the neighbour advertisement: {err6}")
        # Both sockets stay bound to the pod namespace: names and scopes resolve there.
        if packet is not None and link.address4 is not None:
            address4 = link.address4.ip
            try:
                packet.sendto(garp_frame(mac, address4.packed), (link.name, ETH_P_ARP))
            except OSError as err_arp:
                warnings.append(f"{link.name}: gratuitous ARP for {address4} not sent: {err_arp}")
        if icmp6 is not None and link.address6 is not None:
            address6 = link.address6.ip
            try:
                icmp6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
                icmp6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
                icmp6.bind((str(address6), 0, 0, index))
                icmp6.sendto(unsolicited_na(mac, address6.packed), (ALL_NODES, 0, 0, index))
            except OSError as err_na:
                warnings.append(f"{link.name}: neighbour advertisement for {address6} not sent: {err_na}")
    finally:
        if packet is not None:
            packet.close()
        if icmp6 is not None:
            icmp6.close()


def _routes(
    pod: _Pod, link: PodLink, index: int, table: int, routes: dict[str, str], version: int,
    warnings: list[str],
) -> None:
    """Install dst -> gateway routes through the link, replacing any route to the same dst."""
    from pyroute2 import NetlinkError

    for dst, gateway in sorted(routes.items()):
        try:
            network = ip_network(dst, strict=False)
            via = ip_address(gateway)
        except ValueError:
            warnings.append(f"{link.name}: route {dst} via {gateway} skipped: not an address")
            continue
        if network.version != version or via.version != version:
            warnings.append(f"{link.name}: route {dst} via {gateway} skipped: not IPv{version}")
            continue
        try:
            pod.ipr.route("replace", dst=str(network), gateway=str(via), oif=index, table=table)
        except (NetlinkError, OSError) as err:
            raise _failure(
                f"cannot add route {network} via {via} (table {table}) through", link.name,
                pod.netns.path, err,
            ) from err


def _policy(
    pod: _Pod, link: PodLink, index: int, address: str, prefix: int, family: int,
    proutes: dict[str, str], version: int, warnings: list[str],
) -> None:
    from pyroute2 import NetlinkError

    priority = rule_priority(link.table)
    try:
        pod.ipr.rule(
            "add", family=family, src=address, src_len=prefix, table=link.table, priority=priority
        )
    except (NetlinkError, OSError) as err:
        if not (isinstance(err, NetlinkError) and err.code == errno.EEXIST):
            raise _failure(
                f"cannot add rule from {address}/{prefix} lookup {link.table} priority {priority} for",
                link.name, pod.netns.path, err,
            ) from err
    _routes(pod, link, index, link.table, proutes, version, warnings)


def _install_routing(pod: _Pod, link: PodLink, index: int, warnings: list[str]) -> None:
    """Main-table routes of each family with an address, then policy routing (§3.6 5-6)."""
    if link.address4 is not None:
        _routes(pod, link, index, MAIN_TABLE, link.routes, 4, warnings)
    if link.address6 is not None:
        _routes(pod, link, index, MAIN_TABLE, link.routes6, 6, warnings)
    if link.table:
        if link.address4 is not None and link.proutes is not None:
            _policy(pod, link, index, str(link.address4.ip), 32, socket.AF_INET, link.proutes, 4, warnings)
        if link.address6 is not None and link.proutes6 is not None:
            _policy(pod, link, index, str(link.address6.ip), 128, socket.AF_INET6, link.proutes6, 6, warnings)


def _configure(pod: _Pod, link: PodLink, index: int) -> LinkInfo:
    """§3.3 step 3 and §3.6 on the link at ``index`` of the pod namespace."""
    from pyroute2 import NetlinkError

    path = pod.netns.path
    warnings: list[str] = []
    current = pod.link(index, link.temp_name)
    current_name = _nla_str(current, "IFLA_IFNAME") or link.temp_name
    if current_name != link.name:
        try:
            if current["flags"] & IFF_UP:
                pod.ipr.link("set", index=index, state="down")
            pod.ipr.link("set", index=index, ifname=link.name)
        except (NetlinkError, OSError) as rename_err:
            raise _failure(f"cannot rename {current_name} to", link.name, path, rename_err) from rename_err
    if pod.has_ipv6:
        _write_sysctls(pod, link.name, _ipv6_sysctls(link.ipv6_enabled))
    if link.address4 is not None:
        address4 = link.address4
        try:
            pod.ipr.addr(
                "replace", index=index, address=str(address4.ip), prefixlen=address4.network.prefixlen,
                broadcast=address4.network.prefixlen < 31,
            )
        except (NetlinkError, OSError) as addr4_err:
            raise _failure(f"cannot add address {address4} to", link.name, path, addr4_err) from addr4_err
    if link.address6 is not None:
        address6 = link.address6
        try:
            pod.ipr.addr(
                "replace", index=index, address=str(address6.ip), prefixlen=address6.network.prefixlen,
                flags=IFA_F_NODAD,
            )
        except (NetlinkError, OSError) as addr6_err:
            raise _failure(f"cannot add address {address6} to", link.name, path, addr6_err) from addr6_err
    try:
        pod.ipr.link("set", index=index, state="up")
    except (NetlinkError, OSError) as up_err:
        raise _failure("cannot set up", link.name, path, up_err) from up_err
    final = pod.link(index, link.name)
    mac = _nla_str(final, "IFLA_ADDRESS")
    _announce(pod, link, index, mac, warnings)
    _install_routing(pod, link, index, warnings)
    return LinkInfo(link.name, index, mac, _nla_int(final, "IFLA_MTU", 0), warnings)


# --------------------------------------------------------------------------------------------
# The API


def configure(netns_path: str, link: PodLink, current_name: str) -> LinkInfo:
    """Configure the existing link ``current_name`` of the namespace: sysctls and rename while
    down, addresses (IPv6 without DAD), up, announcements, main-table routes, policy routing."""
    netns = _Netns(netns_path)
    try:
        pod = _Pod(netns)
        try:
            index = pod.index_of(current_name)
            if index < 0:
                raise LinkError(
                    f"cannot configure {current_name} in network namespace {netns_path}: no such link",
                    current_name, netns_path,
                )
            return _configure(pod, link, index)
        finally:
            pod.close()
    finally:
        netns.close()


def create_ipvlan(netns_path: str, parent: str, link: PodLink) -> LinkInfo:
    """Create the IPVLAN (L2) link on ``parent`` in the calling thread's (host) namespace, with
    the parent's MTU, move it into the pod namespace and configure it there. On any failure the
    link is deleted again, wherever it is by then."""
    from pyroute2 import NetlinkError

    netns = _Netns(netns_path)
    try:
        pod = _Pod(netns)  # enters the namespace once: NetnsMissing before the host is touched
        try:
            _create_in_host(netns, parent, link)
            index = pod.index_of(link.temp_name)
            if index < 0:
                raise LinkError(
                    f"{link.temp_name} vanished after the move into network namespace {netns_path}",
                    link.temp_name, netns_path,
                )
            try:
                return _configure(pod, link, index)
            except BaseException:
                try:
                    pod.ipr.link("del", index=index)
                except (NetlinkError, OSError):
                    pass  # the original error matters; the link may be gone already
                raise
        finally:
            pod.close()
    finally:
        netns.close()


def _create_in_host(netns: _Netns, parent: str, link: PodLink) -> None:
    """Create the IPVLAN link in the calling thread's namespace and move it into the pod's;
    if the move fails, delete it from the host again."""
    from pyroute2 import NetlinkError

    temp = link.temp_name
    host = _iproute(_rtnl_socket())
    try:
        try:
            found = host.link_lookup(ifname=parent)
            parent_link = host.link("get", index=found[0])[0] if found else None
        except (NetlinkError, OSError) as lookup_err:
            raise _failure("cannot look up parent", parent, "", lookup_err) from lookup_err
        if parent_link is None:
            raise ParentMissing(f"host device {parent} does not exist", parent)
        spec: dict[str, object] = {
            "ifname": temp, "kind": "ipvlan", "link": parent_link["index"], "ipvlan_mode": IPVLAN_MODE_L2,
        }
        mtu = _nla_int(parent_link, "IFLA_MTU", 0)
        if mtu:
            spec["mtu"] = mtu
        try:
            host.link("add", **spec)
            created = host.link_lookup(ifname=temp)
        except (NetlinkError, OSError) as add_err:
            raise _failure(f"cannot create ipvlan on {parent} named", temp, "", add_err) from add_err
        if not created:
            raise LinkError(f"ipvlan {temp} vanished from the host network namespace after its creation", temp)
        try:
            host.link("set", index=created[0], net_ns_fd=netns.fd)
        except BaseException as move_err:
            try:
                host.link("del", index=created[0])
            except (NetlinkError, OSError):
                pass  # the move error is the one to report
            if isinstance(move_err, (NetlinkError, OSError)):
                raise LinkError(
                    f"cannot move {temp} from the host network namespace into network namespace "
                    f"{netns.path}: {_reason(move_err)}",
                    temp, netns.path,
                ) from move_err
            raise
    finally:
        host.close()


def delete_link(netns_path: str, name: str) -> bool:
    """Delete the link; False when the namespace or the link is already gone. Policy rules of
    the pod address are left: they live in the pod namespace, which the runtime deletes.
    pyroute2 is loaded only when there is a link to delete."""
    try:
        netns = _Netns(netns_path)
    except NetnsMissing:
        return False
    try:
        try:
            with netns.inside():
                present = _link_facts(name) is not None
        except NetnsMissing:
            return False
        if not present:  # (a delegate's DEL usually removed it already)
            return False
        return _delete_present(netns, name)
    finally:
        netns.close()


def _delete_present(netns: _Netns, name: str) -> bool:
    from pyroute2 import NetlinkError

    pod = _Pod(netns)
    try:
        index = pod.index_of(name)
        if index < 0:
            return False
        try:
            pod.ipr.link("del", index=index)
        except (NetlinkError, OSError) as err:
            if isinstance(err, NetlinkError) and err.code == errno.ENODEV:
                return False
            raise _failure("cannot delete", name, netns.path, err) from err
        return True
    finally:
        pod.close()


def enable_ipv6(netns_path: str) -> bool:
    """Turn IPv6 on for the namespace (all and default), if its kernel has IPv6 at all."""
    netns = _Netns(netns_path)
    try:
        with netns.inside():
            if not os.path.isdir(IPV6_SYSCTLS):
                return False
            for scope in ("all", "default"):
                path = f"{IPV6_SYSCTLS}/conf/{scope}/disable_ipv6"
                try:
                    with open(path, "w", encoding="ascii") as sysctl:
                        sysctl.write("0")
                except OSError as err:
                    raise LinkError(
                        f"cannot set net.ipv6.conf.{scope}.disable_ipv6=0 in network namespace "
                        f"{netns_path}: {err.strerror}",
                        scope, netns_path,
                    ) from err
        return True
    finally:
        netns.close()


def inspect(netns_path: str, name: str) -> ObservedLink | None:
    """The link ``name`` of the namespace as the kernel sees it; None if there is no such link."""
    from pyroute2 import NetlinkError

    netns = _Netns(netns_path)
    try:
        pod = _Pod(netns)
        try:
            index = pod.index_of(name)
            if index < 0:
                return None
            try:
                return _observe(pod.ipr, pod.link(index, name), index)
            except (NetlinkError, OSError) as err:
                raise _failure("cannot inspect", name, netns_path, err) from err
        finally:
            pod.close()
    finally:
        netns.close()


def _observe(ipr: IPRoute, link: ifinfmsg, index: int) -> ObservedLink:
    addresses: set[str] = set()
    for addr in ipr.get_addr(index=index):
        if addr["scope"] != RT_SCOPE_UNIVERSE:
            continue
        address = _nla_str(addr, "IFA_LOCAL") or _nla_str(addr, "IFA_ADDRESS")
        if address:
            addresses.add(f"{address}/{addr['prefixlen']}")
    routes: set[tuple[int, str, str]] = set()
    for route in ipr.get_routes():
        table = _nla_int(route, "RTA_TABLE", route["table"])
        if _nla_int(route, "RTA_OIF", 0) != index or table == LOCAL_TABLE or route["type"] != RTN_UNICAST:
            continue
        family = route["family"]
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        dst = _nla_str(route, "RTA_DST") or ("0.0.0.0" if family == socket.AF_INET else "::")
        routes.add((table, f"{dst}/{route['dst_len']}", _nla_str(route, "RTA_GATEWAY")))
    rules: set[tuple[int, str, int]] = set()
    for family in (socket.AF_INET, socket.AF_INET6):
        anywhere = "0.0.0.0" if family == socket.AF_INET else "::"
        for rule in ipr.get_rules(family=family):
            source = _nla_str(rule, "FRA_SRC") or anywhere
            rules.add((
                _nla_int(rule, "FRA_PRIORITY", 0),
                f"{source}/{rule['src_len']}",
                _nla_int(rule, "FRA_TABLE", rule["table"]),
            ))
    return ObservedLink(
        _nla_str(link, "IFLA_IFNAME"),
        index,
        _nla_str(link, "IFLA_ADDRESS"),
        bool(link["flags"] & IFF_UP),
        addresses,
        routes,
        rules,
    )



# --------------------------------------------------------------------------------------------
# Post-processing of links other plugins created

SIOCGIFHWADDR: Final = 0x8927
SIOCGIFMTU: Final = 0x8921


def _link_facts(name: str) -> tuple[int, str, int] | None:
    """(index, MAC, MTU) of ``name`` in the calling thread's namespace, None if there is no
    such link; plain ioctls, so that no netlink library is needed to find out."""
    import fcntl

    try:
        index = socket.if_nametoindex(name)
    except OSError:
        return None
    request = struct.pack("16s16x", name.encode())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            hardware = fcntl.ioctl(probe.fileno(), SIOCGIFHWADDR, request)
            mac = ":".join(f"{byte:02x}" for byte in hardware[18:24])
            mtu = int(struct.unpack("16si12x", fcntl.ioctl(probe.fileno(), SIOCGIFMTU, request))[1])
        except OSError:
            return index, "", 0
    return index, mac, mtu


def post_process(netns_path: str, link: PodLink) -> LinkInfo | None:
    """§3.6 for a link another plugin created and brought up: the IPv6 sysctls, the IPv6
    address again without DAD, main-table routes and policy routing. None when the namespace has
    no such kernel link (user-space interfaces: the caller warns and skips). pyroute2 is loaded
    only when an address, route or rule is to be changed."""
    netns = _Netns(netns_path)
    try:
        with netns.inside():
            facts = _link_facts(link.name)
            has_ipv6 = os.path.isdir(IPV6_SYSCTLS)
        if facts is None:
            return None
        index, mac, mtu = facts
        if has_ipv6:
            _set_sysctls(netns, link.name, _ipv6_sysctls(link.ipv6_enabled))
        warnings: list[str] = []
        routes4 = link.address4 is not None and (bool(link.routes) or (bool(link.table) and link.proutes is not None))
        routes6 = link.address6 is not None
        if routes4 or routes6:
            pod = _Pod(netns)
            try:
                _post_process(pod, link, index, warnings)
            finally:
                pod.close()
        return LinkInfo(link.name, index, mac, mtu, warnings)
    finally:
        netns.close()


def _post_process(pod: _Pod, link: PodLink, index: int, warnings: list[str]) -> None:
    from pyroute2 import NetlinkError

    if link.address6 is not None:
        # The plugin added it with DAD: "replace" would keep it tentative, so it is added anew.
        address6 = link.address6
        prefix6 = address6.network.prefixlen
        try:
            pod.ipr.addr("del", index=index, address=str(address6.ip), prefixlen=prefix6)
        except NetlinkError as absent:
            if absent.code != errno.EADDRNOTAVAIL:
                raise _failure(f"cannot replace address {address6} of", link.name, pod.netns.path, absent) from absent
        try:
            pod.ipr.addr("add", index=index, address=str(address6.ip), prefixlen=prefix6, flags=IFA_F_NODAD)
        except (NetlinkError, OSError) as addr6_err:
            raise _failure(f"cannot add address {address6} to", link.name, pod.netns.path, addr6_err) from addr6_err
    _install_routing(pod, link, index, warnings)

# mypyc compiles `msg.get(key)` on a dict subclass -- which pyroute2 messages are -- into a raw
# dict lookup (CPyDict_Get: "dodgily assuming that get on a subclass doesn't have different
# behavior"), bypassing pyroute2's get() that reads NLAs: compiled, every NLA would read None.
# So NLAs are read with get_attr() and struct fields with msg[field] (PyObject_GetItem on a
# subclass), never with .get().


def _nla_str(msg: nlmsg_base, name: str) -> str:
    value = msg.get_attr(name)
    return value if isinstance(value, str) else ""


def _nla_int(msg: nlmsg_base, name: str, default: int) -> int:
    value = msg.get_attr(name)
    return value if isinstance(value, int) else default


# --------------------------------------------------------------------------------------------
# DPDK dummy interfaces (reference §3.6 step 1)

DPDK_DUMMY_NAME_LENGTH: Final = 14  # the original's slice of the DanmEp name
MAX_VLAN_ID: Final = 4094
ZERO_MAC: Final = "00:00:00:00:00:00"


def _usable_mac(mac: str) -> str:
    """``mac`` in lower case if it is an Ethernet address other than all zeros, else "" (the
    kernel then picks a random one)."""
    octets = mac.split(":")
    if len(octets) != 6 or any(len(octet) != 2 for octet in octets):
        return ""
    try:
        bytes.fromhex("".join(octets))
    except ValueError:
        return ""
    normalised = mac.lower()
    return "" if normalised == ZERO_MAC else normalised


def create_dpdk_dummy(
    netns_path: str, ifname: str, endpoint_name: str, mac: str, pci_address: str, vlan: int,
    ipv6_enabled: bool = False,
) -> LinkInfo:
    """The stand-in kernel interface of a VF bound to a userspace driver, in the pod namespace.

    vlan == 0: a dummy named ``ifname``. vlan != 0: a dummy named with the first 14 characters
    of the DanmEp name (``endpoint_name``), its IPv6 sysctls set (§3.6 step 3; ``ipv6_enabled``
    says whether the interface has IPv6) and up, and a VLAN link ``vlan`` on it named
    ``ifname``. Either way the ``ifname`` link gets ``mac`` (when usable, see `_usable_mac`) and
    the alias ``pci_address``, and is left down: the caller's `configure` adds addresses and
    brings it up. On failure every link created here is deleted again."""
    from pyroute2 import NetlinkError

    _check_ifname("interface name", ifname)
    if vlan < 0 or vlan > MAX_VLAN_ID:
        raise LinkError(f"{ifname}: vlan {vlan} is not a VLAN ID (0..{MAX_VLAN_ID})", ifname, netns_path)
    lower = endpoint_name[:DPDK_DUMMY_NAME_LENGTH]
    if vlan:
        _check_ifname(f"dummy interface name (from DanmEp {endpoint_name!r})", lower)
    address = _usable_mac(mac)
    netns = _Netns(netns_path)
    try:
        pod = _Pod(netns)
        try:
            created: list[int] = []
            try:
                if vlan:
                    lower_index = _add_pod_link(pod, created, lower, "dummy", {}, address)
                    if pod.has_ipv6:
                        _write_sysctls(pod, lower, _ipv6_sysctls(ipv6_enabled))
                    try:
                        pod.ipr.link("set", index=lower_index, state="up")
                    except (NetlinkError, OSError) as up_err:
                        raise _failure("cannot set up", lower, netns_path, up_err) from up_err
                    index = _add_pod_link(
                        pod, created, ifname, "vlan", {"link": lower_index, "vlan_id": vlan}, address
                    )
                else:
                    index = _add_pod_link(pod, created, ifname, "dummy", {}, address)
                if pci_address:
                    try:
                        pod.ipr.link("set", index=index, ifalias=pci_address)
                    except (NetlinkError, OSError) as alias_err:
                        raise _failure(
                            f"cannot set alias {pci_address} on", ifname, netns_path, alias_err
                        ) from alias_err
                final = pod.link(index, ifname)
                return LinkInfo(ifname, index, _nla_str(final, "IFLA_ADDRESS"), _nla_int(final, "IFLA_MTU", 0))
            except BaseException:
                for created_index in reversed(created):
                    try:
                        pod.ipr.link("del", index=created_index)
                    except (NetlinkError, OSError):
                        pass  # the original error matters; a VLAN goes with its dummy anyway
                raise
        finally:
            pod.close()
    finally:
        netns.close()


def _add_pod_link(
    pod: _Pod, created: list[int], name: str, kind: str, extra: dict[str, object], mac: str
) -> int:
    """Create link ``name`` of ``kind`` in the pod namespace, record its index in ``created``
    (for the caller's rollback) and return it."""
    from pyroute2 import NetlinkError

    path = pod.netns.path
    spec: dict[str, object] = {"ifname": name, "kind": kind}
    spec.update(extra)
    if mac:
        spec["address"] = mac
    try:
        pod.ipr.link("add", **spec)
    except (NetlinkError, OSError) as add_err:
        with_mac = f" with MAC {mac}" if mac else ""
        raise _failure(f"cannot create {kind}{with_mac} named", name, path, add_err) from add_err
    index = pod.index_of(name)
    if index < 0:
        raise LinkError(f"{kind} {name} vanished from network namespace {path} after its creation", name, path)
    created.append(index)
    return index
