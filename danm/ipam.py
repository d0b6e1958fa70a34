"""Cluster-wide IPAM: allocation bitmaps of danm networks.

The top of this module is the pure core: functions from a ``Network`` (and a request) to an
updated copy of it, with no I/O. The original's wire format is kept bit-exact (reference §6):

* ``alloc`` is the IPv4 bitmap over the whole ``cidr``; ``alloc6`` is the IPv6 bitmap over
  ``allocation_pool_v6.cidr``, a sub-prefix of ``net6``. Bit *i* is the address base + *i*; it
  lives in byte ``i // 8`` under mask ``0x80 >> (i % 8)`` (MSB-first); the bytes are standard
  Base64 with padding. The network address (bit 0), the last address (bit 2^k - 1) and the
  route gateways are set when a bitmap is created. At most 2^23 bits per bitmap.
* Returned addresses carry the prefix of ``cidr`` (v4) or ``net6`` (v6), never the pool6 one.

Defects of the original that are fixed here (reference §11): ``lastIp`` is parsed in bare and in
CIDR form, so dynamic allocation is the intended next-fit (it starts after ``lastIp`` and wraps
to the pool start, the start included); IPv6 indices are not truncated to 32 bits; a gateway at
index == length is not a crash; gateways outside the bitmap are ignored; freeing the network,
last or a gateway address is refused (nothing owns them, freeing them would hand them out).

Speed: a /9 bitmap is 1 MiB, 1.4 MB of Base64. Nothing here decodes it whole per allocation.
Each 4-character Base64 group is exactly 3 bytes (24 bits), so a bit is read or written by
decoding its group alone and splicing the re-encoded group back; the dynamic scan skips full
groups (``////``) with in-place ``str.startswith`` comparisons (memcmp) of doubling/halving
runs of slashes, and decodes only the group where the first non-full one is found.
"""

from __future__ import annotations

import binascii
import random
import time
import uuid
from collections.abc import Callable
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import Final

from msgspec import structs

from danm import kube
from danm.errors import DanmError
from danm.types import AllocationPool, AllocationPoolV6, DanmEp, Network, NetworkOptions

# --------------------------------------------------------------------------------------------
# Errors


class IpamError(DanmError):
    """Root of the IPAM errors; ``network`` and ``address`` name what was refused."""

    def __init__(self, message: str, network: str = "", address: str = "") -> None:
        super().__init__(message)
        self.network = network
        self.address = address


class L2NetworkError(IpamError):
    """An address was requested for a family the network has no subnet for."""


class PoolExhaustedError(IpamError):
    """No free address is left in the dynamic allocation pool."""


class OutsideCidrError(IpamError):
    """A static address lies outside the network's subnet."""


class AddressInUseError(IpamError):
    """A static address is already allocated."""


class InvalidAddressError(IpamError):
    """A requested address does not parse as an address of the requested family."""


class InvalidNetworkError(IpamError):
    """The network's IPAM configuration is unusable: bad cidr, pool or bitmap."""


# --------------------------------------------------------------------------------------------
# Constants

MAX_BITMAP_EXPONENT: Final = 23
MAX_TRACKED_ADDRESSES: Final = 1 << MAX_BITMAP_EXPONENT
MIN_V4_PREFIX: Final = 9
MIN_V6_POOL_PREFIX: Final = 105

REQUEST_NONE: Final = "none"
REQUEST_DYNAMIC: Final = "dynamic"

_FULL_GROUP: Final = "////"
# "/" * 2**j for j in 0..16: runs compared in place by str.startswith while skipping full groups.
_SLASH_RUNS: Final[tuple[str, ...]] = tuple("/" * (1 << j) for j in range(17))
_MAX_RUN_EXPONENT: Final = 16


# --------------------------------------------------------------------------------------------
# Results


class Reservation:
    """The outcome of ``reserve``: the network to write back (if ``changed``) and the addresses.

    ``ip4``/``ip6`` are ``""`` (not requested), ``"none"``, or an address with the prefix of
    ``cidr``/``net6``. ``network`` is the very object passed in when nothing changed.
    """

    __slots__ = ("network", "ip4", "ip6", "changed")

    def __init__(self, network: Network, ip4: str, ip6: str, changed: bool) -> None:
        self.network = network
        self.ip4 = ip4
        self.ip6 = ip6
        self.changed = changed

    def __repr__(self) -> str:
        return f"Reservation(ip4={self.ip4!r}, ip6={self.ip6!r}, changed={self.changed})"


# --------------------------------------------------------------------------------------------
# Naming, for messages


def network_label(net: Network) -> str:
    """``Kind namespace/name`` (``Kind name`` for cluster-scoped networks)."""
    kind = net.kind or "DanmNet"
    meta = net.metadata
    if meta.namespace:
        return f"{kind} {meta.namespace}/{meta.name}"
    return f"{kind} {meta.name}"


# --------------------------------------------------------------------------------------------
# Bitmaps as Base64 text


def bitmap_bytes_for_bits(nbits: int) -> int:
    """Bytes of a bitmap of ``nbits`` bits: ceil(nbits / 8), at least one."""
    return max(1, (nbits + 7) // 8)


def _new_bitmap_data(prefix_bits_free: int, label: str) -> bytearray:
    if prefix_bits_free > MAX_BITMAP_EXPONENT:
        raise InvalidNetworkError(
            f"{label}: DANM does not support networks with more than 2^{MAX_BITMAP_EXPONENT} IP "
            f"addresses (this subnet has 2^{prefix_bits_free})",
            label,
        )
    if prefix_bits_free < 0:
        raise InvalidNetworkError(f"{label}: invalid subnet size 2^{prefix_bits_free}", label)
    nbits = 1 << prefix_bits_free
    data = bytearray(bitmap_bytes_for_bits(nbits))
    data[0] |= 0x80
    last = nbits - 1
    data[last >> 3] |= 0x80 >> (last & 7)
    return data


def _encode(data: bytes | bytearray) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def new_bitmap(prefix_bits_free: int) -> str:
    """The Base64 bitmap of a fresh subnet with 2^k addresses: first and last address set."""
    return _encode(_new_bitmap_data(prefix_bits_free, "network"))


def _bad_bitmap(label: str, field: str, why: str) -> InvalidNetworkError:
    return InvalidNetworkError(f"{label}: the {field} allocation bitmap is corrupt: {why}", label)


def _check_bitmap(bitmap: str, nbits: int, label: str, field: str) -> None:
    """Cheap shape check (length and padding), without decoding the whole text."""
    nbytes = bitmap_bytes_for_bits(nbits)
    expected = 4 * ((nbytes + 2) // 3)
    if len(bitmap) != expected:
        raise _bad_bitmap(label, field, f"{len(bitmap)} Base64 characters, the subnet needs {expected}")
    tail = _decode_group(bitmap, (expected >> 2) - 1, label, field)
    want = nbytes - 3 * ((expected >> 2) - 1)
    if len(tail) != want:
        raise _bad_bitmap(label, field, "wrong padding")


def _decode_group(bitmap: str, group: int, label: str, field: str) -> bytes:
    start = group << 2
    try:
        return binascii.a2b_base64(bitmap[start : start + 4], strict_mode=True)
    except binascii.Error as decode_error:
        raise _bad_bitmap(label, field, f"invalid Base64 at offset {start}: {decode_error}") from None


def _test_bit(bitmap: str, index: int, label: str, field: str) -> bool:
    byte = index >> 3
    group = byte // 3
    data = _decode_group(bitmap, group, label, field)
    offset = byte - 3 * group
    if offset >= len(data):
        raise _bad_bitmap(label, field, f"bit {index} lies beyond its end")
    return (data[offset] & (0x80 >> (index & 7))) != 0


def _write_bit(bitmap: str, index: int, value: bool, label: str, field: str) -> str:
    """The bitmap with bit ``index`` set to ``value``: one group re-encoded and spliced in."""
    byte = index >> 3
    group = byte // 3
    data = bytearray(_decode_group(bitmap, group, label, field))
    offset = byte - 3 * group
    if offset >= len(data):
        raise _bad_bitmap(label, field, f"bit {index} lies beyond its end")
    mask = 0x80 >> (index & 7)
    if value:
        data[offset] |= mask
    else:
        data[offset] &= 0xFF ^ mask
    start = group << 2
    if start < (len(bitmap) >> 2):
        # Near the front: replacing the prefix (whose first occurrence is, by definition, at 0)
        # makes one large allocation and copy instead of the two of slice-and-join.
        return bitmap.replace(bitmap[: start + 4], bitmap[:start] + _encode(data), 1)
    return "".join((bitmap[:start], _encode(data), bitmap[start + 4 :]))


def _skip_full_groups(bitmap: str, pos: int, endpos: int) -> int:
    """The first position in [pos, endpos) holding a character other than ``/``, else endpos.

    Runs of up to 65536 slashes are compared in place (memcmp); a mismatching run is halved
    until the character is found, so a 1.4 MB stretch of full groups costs ~22 + 16 compares.
    """
    j = _MAX_RUN_EXPONENT
    while pos < endpos:
        remaining = endpos - pos
        while j > 0 and (1 << j) > remaining:
            j -= 1
        if bitmap.startswith(_SLASH_RUNS[j], pos):
            pos += 1 << j
        elif j == 0:
            return pos
        else:
            j -= 1
    return endpos


def _first_clear_in_group(bitmap: str, group: int, lo: int, hi: int, label: str, field: str) -> int:
    """The first clear bit in [lo, hi] (both inside ``group``), or -1."""
    data = _decode_group(bitmap, group, label, field)
    first = group * 24
    index = lo
    while index <= hi:
        offset = (index - first) >> 3
        if offset >= len(data):
            raise _bad_bitmap(label, field, f"bit {index} lies beyond its end")
        byte = data[offset]
        if byte == 0xFF:
            index = ((index >> 3) + 1) << 3
            continue
        if not byte & (0x80 >> (index & 7)):
            return index
        index += 1
    return -1


def _find_clear(bitmap: str, lo: int, hi: int, label: str, field: str) -> int:
    """The first clear bit with index in [lo, hi], or -1."""
    if lo > hi:
        return -1
    group = lo // 24
    last_group = hi // 24
    found = _first_clear_in_group(bitmap, group, lo, min(hi, group * 24 + 23), label, field)
    if found >= 0 or last_group == group:
        return found
    pos = (group + 1) << 2
    endpos = last_group << 2
    while pos < endpos:
        pos = _skip_full_groups(bitmap, pos, endpos)
        if pos >= endpos:
            break
        candidate = pos >> 2
        found = _first_clear_in_group(bitmap, candidate, candidate * 24, candidate * 24 + 23, label, field)
        if found >= 0:
            return found
        pos = (candidate + 1) << 2
    return _first_clear_in_group(bitmap, last_group, last_group * 24, hi, label, field)


def _next_fit(bitmap: str, begin: int, end: int, last: int, label: str, field: str) -> int:
    """Next-fit over [begin, end]: from last + 1 to end, then from begin up to last; or -1."""
    if last < begin or last >= end:
        return _find_clear(bitmap, begin, end, label, field)
    found = _find_clear(bitmap, last + 1, end, label, field)
    if found >= 0:
        return found
    return _find_clear(bitmap, begin, last, label, field)


# --------------------------------------------------------------------------------------------
# Parsing


def _parse_v4_cidr(cidr: str, label: str) -> IPv4Network:
    try:
        network = ip_network(cidr.strip(), strict=False)
    except ValueError:
        raise InvalidNetworkError(f"{label}: invalid CIDR {cidr!r}", label) from None
    if not isinstance(network, IPv4Network):
        raise InvalidNetworkError(f"{label}: cidr {cidr!r} is not a valid IPv4 subnet", label)
    if network.prefixlen < MIN_V4_PREFIX:
        raise InvalidNetworkError(
            f"{label}: the netmask of the IPv4 CIDR {cidr} is bigger than the maximum allowed "
            f"/{MIN_V4_PREFIX} (more than 2^{MAX_BITMAP_EXPONENT} addresses)",
            label,
        )
    return network


def _parse_v6_cidr(cidr: str, label: str, field: str) -> IPv6Network:
    try:
        network = ip_network(cidr.strip(), strict=False)
    except ValueError:
        raise InvalidNetworkError(f"{label}: invalid {field} {cidr!r}", label) from None
    if not isinstance(network, IPv6Network):
        raise InvalidNetworkError(f"{label}: {field} {cidr!r} is not a valid IPv6 subnet", label)
    return network


def _bare(address: str) -> str:
    """The address part of ``ip`` or ``ip/prefix``."""
    slash = address.find("/")
    return address if slash < 0 else address[:slash]


def _parse_v4_address(address: str) -> IPv4Address | None:
    try:
        return IPv4Address(_bare(address).strip())
    except ValueError:
        return None


def _parse_v6_address(address: str) -> IPv6Address | None:
    bare = _bare(address).strip()
    if "%" in bare:
        return None  # zone ids name a link, not an address of a network
    try:
        return IPv6Address(bare)
    except ValueError:
        return None


def _parse_any_address(address: str) -> IPv4Address | IPv6Address | None:
    bare = _bare(address).strip()
    if "%" in bare:
        return None
    try:
        return ip_address(bare)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Pools


def _bitmap_for(network: IPv4Network | IPv6Network, routes: dict[str, str] | None, label: str) -> str:
    """§6.2: a fresh bitmap over ``network`` with the route gateways inside it reserved."""
    k = network.max_prefixlen - network.prefixlen
    data = _new_bitmap_data(k, label)
    nbits = 1 << k
    base = int(network.network_address)
    if routes:
        for gateway in routes.values():
            parsed = _parse_any_address(gateway)
            if parsed is None or parsed.version != network.version:
                continue
            index = int(parsed) - base
            if 0 <= index < nbits:
                data[index >> 3] |= 0x80 >> (index & 7)
    return _encode(data)


def init_alloc_pool(
    cidr: str, start: str, end: str, alloc: str, routes: dict[str, str] | None, label: str = "network"
) -> tuple[str, str, str]:
    """§6.3 InitAllocPool: (start, end, alloc) with the empty ones defaulted.

    start = first address + 1, end = last address - 1, alloc = bitmap over ``cidr`` with the
    gateways of ``routes`` reserved. ``cidr`` may be IPv4 or IPv6 (the pool6 cidr); empty →
    everything unchanged.
    """
    if cidr == "":
        return start, end, alloc
    try:
        network = ip_network(cidr.strip(), strict=False)
    except ValueError:
        raise InvalidNetworkError(f"{label}: invalid CIDR {cidr!r}", label) from None
    if (start == "" or end == "") and network.num_addresses < 4:
        raise InvalidNetworkError(
            f"{label}: {cidr} is too small for a default allocation pool (needs at least 4 addresses)",
            label,
        )
    base = int(network.network_address)
    if start == "":
        start = str(IPv4Address(base + 1) if network.version == 4 else IPv6Address(base + 1))
    if end == "":
        last = int(network.broadcast_address) - 1
        end = str(IPv4Address(last) if network.version == 4 else IPv6Address(last))
    if alloc == "":
        alloc = _bitmap_for(network, routes, label)
    return start, end, alloc


def _v4_addresses(options: NetworkOptions) -> int:
    """Addresses of the IPv4 cidr (0 without one); an unparsable cidr is an error."""
    if options.cidr == "":
        return 0
    try:
        return ip_network(options.cidr.strip(), strict=False).num_addresses
    except ValueError:
        raise InvalidNetworkError(f"invalid CIDR {options.cidr!r}") from None


def _max_usable_v6_prefix(options: NetworkOptions) -> int:
    if options.cidr == "":
        return MIN_V6_POOL_PREFIX
    remaining = MAX_TRACKED_ADDRESSES - _v4_addresses(options)
    for prefix in range(MIN_V6_POOL_PREFIX, 129):
        if (1 << (128 - prefix)) < remaining:
            return prefix
    return 128


def max_usable_v6_prefix(net: Network) -> int:
    """§6.5: the smallest pool6 prefix (105..128) whose size fits the 2^23 budget beside the v4 cidr."""
    return _max_usable_v6_prefix(net.spec.options)


def _default_pool6_cidr(options: NetworkOptions, label: str) -> str:
    net6 = _parse_v6_cidr(options.net6, label, "net6")
    prefix = max(_max_usable_v6_prefix(options), net6.prefixlen)
    return f"{net6.network_address}/{prefix}"


def default_pool6_cidr(net: Network) -> str:
    """§6.5: net6 base / max(maxUsableV6Prefix, prefix(net6)); may be an (invalid) /128."""
    return _default_pool6_cidr(net.spec.options, network_label(net))


def _init_v4(options: NetworkOptions, label: str) -> NetworkOptions:
    if options.cidr == "":
        return options
    _parse_v4_cidr(options.cidr, label)
    pool = options.allocation_pool if options.allocation_pool is not None else AllocationPool()
    start, end, alloc = init_alloc_pool(options.cidr, pool.start, pool.end, options.alloc, options.routes, label)
    if options.allocation_pool is not None and start == pool.start and end == pool.end and alloc == options.alloc:
        return options
    return structs.replace(
        options, alloc=alloc, allocation_pool=structs.replace(pool, start=start, end=end)
    )


def _init_v6(options: NetworkOptions, label: str) -> NetworkOptions:
    if options.net6 == "":
        return options
    _parse_v6_cidr(options.net6, label, "net6")
    pool = options.allocation_pool_v6 if options.allocation_pool_v6 is not None else AllocationPoolV6()
    cidr = pool.cidr
    if cidr == "":
        cidr = _default_pool6_cidr(options, label)
        if cidr.endswith("/128"):
            raise InvalidNetworkError(
                f"{label}: no room for an IPv6 allocation pool: the IPv4 cidr {options.cidr} uses "
                f"the whole 2^{MAX_BITMAP_EXPONENT} address budget",
                label,
            )
    start, end, alloc6 = init_alloc_pool(cidr, pool.start, pool.end, options.alloc6, options.routes6, label)
    if (
        options.allocation_pool_v6 is not None
        and cidr == pool.cidr
        and start == pool.start
        and end == pool.end
        and alloc6 == options.alloc6
    ):
        return options
    return structs.replace(
        options,
        alloc6=alloc6,
        allocation_pool_v6=structs.replace(pool, cidr=cidr, start=start, end=end),
    )


def _with_options(net: Network, options: NetworkOptions) -> Network:
    if options is net.spec.options:
        return net
    return structs.replace(net, spec=structs.replace(net.spec, options=options))


def initialise(net: Network) -> Network:
    """Lazy initialisation of both families (the same object when nothing was missing).

    IPv4 with a cidr: pool start/end defaults and ``alloc`` (gateways reserved) when empty.
    IPv6 with net6: the pool6 cidr when empty (§6.5), then its start/end and ``alloc6``.
    """
    label = network_label(net)
    options = _init_v6(_init_v4(net.spec.options, label), label)
    return _with_options(net, options)


# Validation helpers (the webhook's rules V1-V3 build on these) -------------------------------


def check_v4_cidr(cidr: str, label: str = "network") -> IPv4Network:
    """A valid IPv4 subnet with a mask of at least /9."""
    return _parse_v4_cidr(cidr, label)


def check_v6_net(net6: str, label: str = "network") -> IPv6Network:
    return _parse_v6_cidr(net6, label, "net6")


def check_pool(cidr: str, start: str, end: str, label: str = "network") -> None:
    """start and end parse, lie inside ``cidr`` (either family), and end > start."""
    try:
        network = ip_network(cidr.strip(), strict=False)
    except ValueError:
        raise InvalidNetworkError(f"{label}: invalid CIDR {cidr!r}", label) from None
    first = _parse_any_address(start)
    last = _parse_any_address(end)
    if first is None or first.version != network.version:
        raise InvalidNetworkError(f"{label}: allocation pool start {start!r} is not a valid address", label)
    if last is None or last.version != network.version:
        raise InvalidNetworkError(f"{label}: allocation pool end {end!r} is not a valid address", label)
    if first not in network or last not in network:
        raise InvalidNetworkError(
            f"{label}: allocation pool {start}-{end} is outside of the defined CIDR {cidr}", label
        )
    if int(last) <= int(first):
        raise InvalidNetworkError(
            f"{label}: allocation pool start {start} is bigger than or equal to allocation pool end {end}",
            label,
        )


def check_pool6_cidr(net: Network) -> None:
    """The pool6 cidr is IPv6, inside net6, within the budget (§6.5) and not a /128."""
    label = network_label(net)
    options = net.spec.options
    net6 = _parse_v6_cidr(options.net6, label, "net6")
    pool = options.allocation_pool_v6
    cidr = pool.cidr if pool is not None else ""
    if cidr == "":
        raise InvalidNetworkError(f"{label}: the IPv6 allocation pool has no cidr", label)
    pool_net = _parse_v6_cidr(cidr, label, "allocation_pool_v6.cidr")
    limit = _max_usable_v6_prefix(options)
    if pool_net.prefixlen < limit or pool_net.prefixlen == 128:
        raise InvalidNetworkError(
            f"{label}: the IPv6 allocation pool {cidr} exceeds the maximum - 8M-size(IPv4 allocation "
            f"pool) - storage capacity (the prefix must be at least /{limit} and not /128)",
            label,
        )
    if not pool_net.subnet_of(net6):
        raise InvalidNetworkError(
            f"{label}: the IPv6 allocation pool {cidr} is outside of the defined IPv6 subnet {options.net6}",
            label,
        )


def validate(net: Network) -> Network:
    """Initialise ``net`` and check every IPAM rule; the initialised network, or an error."""
    label = network_label(net)
    options = net.spec.options
    if options.cidr == "":
        pool = options.allocation_pool
        if pool is not None and (pool.start != "" or pool.end != ""):
            raise InvalidNetworkError(f"{label}: V4 allocation pool cannot be defined without CIDR", label)
    if options.net6 == "":
        pool6 = options.allocation_pool_v6
        if pool6 is not None and (pool6.start != "" or pool6.end != "" or pool6.cidr != ""):
            raise InvalidNetworkError(f"{label}: IPv6 allocation pool cannot be defined without net6", label)
    initialised = initialise(net)
    options = initialised.spec.options
    if options.cidr != "":
        network4 = _parse_v4_cidr(options.cidr, label)
        assert options.allocation_pool is not None
        check_pool(options.cidr, options.allocation_pool.start, options.allocation_pool.end, label)
        _check_bitmap(options.alloc, network4.num_addresses, label, "alloc")
    if options.net6 != "":
        check_pool6_cidr(initialised)
        pool6 = options.allocation_pool_v6
        assert pool6 is not None
        check_pool(pool6.cidr, pool6.start, pool6.end, label)
        _check_bitmap(options.alloc6, ip_network(pool6.cidr, strict=False).num_addresses, label, "alloc6")
    return initialised


# --------------------------------------------------------------------------------------------
# Reserve


def _pool_bounds(
    network: IPv4Network | IPv6Network, start: str, end: str, label: str, what: str
) -> tuple[int, int]:
    """The pool's first and last bit index in the bitmap over ``network``."""
    first = _parse_any_address(start)
    last = _parse_any_address(end)
    if first is None or last is None or first.version != network.version or last.version != network.version:
        raise InvalidNetworkError(f"{label}: invalid {what} allocation pool {start!r}-{end!r}", label)
    if first not in network or last not in network:
        raise InvalidNetworkError(
            f"{label}: {what} allocation pool {start}-{end} is outside of {network}", label
        )
    base = int(network.network_address)
    begin = int(first) - base
    stop = int(last) - base
    if stop < begin:
        raise InvalidNetworkError(
            f"{label}: {what} allocation pool start {start} is bigger than its end {end}", label
        )
    return begin, stop


def _last_index(last_ip: str, network: IPv4Network | IPv6Network, begin: int, end: int) -> int:
    """The bitmap index of ``lastIp`` (bare or CIDR form) if inside the pool, else -1."""
    if last_ip == "":
        return -1
    parsed = _parse_any_address(last_ip)
    if parsed is None or parsed.version != network.version:
        return -1
    index = int(parsed) - int(network.network_address)
    if index < begin or index > end:
        return -1
    return index


def _reserve_v4(options: NetworkOptions, request: str, label: str) -> tuple[NetworkOptions, str, bool]:
    if options.cidr == "":
        raise L2NetworkError(
            f"{label}: IP address cannot be allocated for an L2 network (no IPv4 cidr)", label, request
        )
    options = _init_v4(options, label)
    network = _parse_v4_cidr(options.cidr, label)
    alloc = options.alloc
    _check_bitmap(alloc, network.num_addresses, label, "alloc")
    base = int(network.network_address)
    prefix = network.prefixlen
    if request == REQUEST_DYNAMIC:
        pool = options.allocation_pool
        assert pool is not None
        begin, end = _pool_bounds(network, pool.start, pool.end, label, "IPv4")
        index = _next_fit(alloc, begin, end, _last_index(pool.last_ip, network, begin, end), label, "alloc")
        if index < 0:
            raise PoolExhaustedError(
                f"{label}: IP address cannot be dynamically allocated, all addresses of the pool "
                f"{pool.start}-{pool.end} are reserved",
                label,
            )
        address = f"{IPv4Address(base + index)}/{prefix}"
        options = structs.replace(
            options,
            alloc=_write_bit(alloc, index, True, label, "alloc"),
            allocation_pool=structs.replace(pool, last_ip=address),
        )
        return options, address, True
    parsed = _parse_v4_address(request)
    if parsed is None:
        raise InvalidAddressError(f"{label}: {request!r} is not a valid IPv4 address", label, request)
    if parsed not in network:
        raise OutsideCidrError(
            f"{label}: static address {request} is outside the network's CIDR: {options.cidr}", label, request
        )
    index = int(parsed) - base
    if _test_bit(alloc, index, label, "alloc"):
        raise AddressInUseError(f"{label}: IP address {parsed} is already in use", label, request)
    options = structs.replace(options, alloc=_write_bit(alloc, index, True, label, "alloc"))
    return options, f"{parsed}/{prefix}", True


def _reserve_v6(options: NetworkOptions, request: str, label: str) -> tuple[NetworkOptions, str, bool]:
    if options.net6 == "":
        raise L2NetworkError(
            f"{label}: IP address cannot be allocated for an L2 network (no IPv6 net6)", label, request
        )
    original = options
    options = _init_v6(options, label)
    changed = options is not original
    net6 = _parse_v6_cidr(options.net6, label, "net6")
    pool = options.allocation_pool_v6
    assert pool is not None
    tracked = _parse_v6_cidr(pool.cidr, label, "allocation_pool_v6.cidr")
    if tracked.max_prefixlen - tracked.prefixlen > MAX_BITMAP_EXPONENT:
        raise InvalidNetworkError(
            f"{label}: DANM does not support networks with more than 2^{MAX_BITMAP_EXPONENT} IP addresses "
            f"(allocation_pool_v6.cidr {pool.cidr})",
            label,
        )
    alloc6 = options.alloc6
    _check_bitmap(alloc6, tracked.num_addresses, label, "alloc6")
    base = int(tracked.network_address)
    prefix = net6.prefixlen
    if request == REQUEST_DYNAMIC:
        begin, end = _pool_bounds(tracked, pool.start, pool.end, label, "IPv6")
        index = _next_fit(alloc6, begin, end, _last_index(pool.last_ip, tracked, begin, end), label, "alloc6")
        if index < 0:
            raise PoolExhaustedError(
                f"{label}: IP address cannot be dynamically allocated, all addresses of the IPv6 pool "
                f"{pool.start}-{pool.end} are reserved",
                label,
            )
        address = f"{IPv6Address(base + index)}/{prefix}"
        options = structs.replace(
            options,
            alloc6=_write_bit(alloc6, index, True, label, "alloc6"),
            allocation_pool_v6=structs.replace(pool, last_ip=address),
        )
        return options, address, True
    parsed = _parse_v6_address(request)
    if parsed is None:
        raise InvalidAddressError(f"{label}: {request!r} is not a valid IPv6 address", label, request)
    if parsed not in net6:
        raise OutsideCidrError(
            f"{label}: static address {request} is outside the network's CIDR: {options.net6}", label, request
        )
    address = f"{parsed}/{prefix}"
    if parsed not in tracked:
        # Not tracked by the bitmap (§11.29): the I/O shell checks the DanmEps for duplicates.
        return options, address, changed
    index = int(parsed) - base
    if _test_bit(alloc6, index, label, "alloc6"):
        raise AddressInUseError(f"{label}: IP address {parsed} is already in use", label, request)
    options = structs.replace(options, alloc6=_write_bit(alloc6, index, True, label, "alloc6"))
    return options, address, True


def reserve(net: Network, ip4: str, ip6: str) -> Reservation:
    """Reserve per family: ``""`` (nothing), ``"none"``, ``"dynamic"`` or a static address.

    Static addresses may carry a ``/suffix`` (ignored). The network is lazily initialised for
    the families requested. Raises an ``IpamError`` (and then nothing is changed: the
    function is pure) if either family fails.
    """
    label = network_label(net)
    options = net.spec.options
    changed = False
    result4 = ""
    result6 = ""
    if ip4 == REQUEST_NONE:
        result4 = REQUEST_NONE
    elif ip4 != "":
        options, result4, changed4 = _reserve_v4(options, ip4, label)
        changed = changed or changed4
    if ip6 == REQUEST_NONE:
        result6 = REQUEST_NONE
    elif ip6 != "":
        options, result6, changed6 = _reserve_v6(options, ip6, label)
        changed = changed or changed6
    if not changed:
        return Reservation(net, result4, result6, False)
    return Reservation(_with_options(net, options), result4, result6, True)


# --------------------------------------------------------------------------------------------
# Free


def _protected_indices(network: IPv4Network | IPv6Network, routes: dict[str, str] | None) -> set[int]:
    """Indices nobody owns: network address, last address, route gateways."""
    nbits = network.num_addresses
    protected = {0, nbits - 1}
    if routes:
        base = int(network.network_address)
        for gateway in routes.values():
            parsed = _parse_any_address(gateway)
            if parsed is not None and parsed.version == network.version:
                index = int(parsed) - base
                if 0 <= index < nbits:
                    protected.add(index)
    return protected


def free(net: Network, address: str) -> tuple[Network, bool]:
    """Release one address (bare or CIDR form, either family): (network, changed).

    ``""``/``"none"``, unparsable addresses, addresses outside the tracked subnet, an
    uninitialised bitmap, already free addresses and the network/last/gateway addresses all
    leave the network unchanged (the very object is returned).
    """
    if address == "" or address == REQUEST_NONE:
        return net, False
    parsed = _parse_any_address(address)
    if parsed is None:
        return net, False
    label = network_label(net)
    options = net.spec.options
    if isinstance(parsed, IPv4Address):
        if options.cidr == "" or options.alloc == "":
            return net, False
        network4 = _parse_v4_cidr(options.cidr, label)
        if parsed not in network4:
            return net, False
        _check_bitmap(options.alloc, network4.num_addresses, label, "alloc")
        index = int(parsed) - int(network4.network_address)
        if index in _protected_indices(network4, options.routes):
            return net, False
        if not _test_bit(options.alloc, index, label, "alloc"):
            return net, False
        options = structs.replace(options, alloc=_write_bit(options.alloc, index, False, label, "alloc"))
        return _with_options(net, options), True
    pool6 = options.allocation_pool_v6
    if options.net6 == "" or options.alloc6 == "" or pool6 is None or pool6.cidr == "":
        return net, False
    tracked = _parse_v6_cidr(pool6.cidr, label, "allocation_pool_v6.cidr")
    if parsed not in tracked:
        return net, False
    _check_bitmap(options.alloc6, tracked.num_addresses, label, "alloc6")
    index = int(parsed) - int(tracked.network_address)
    if index in _protected_indices(tracked, options.routes6):
        return net, False
    if not _test_bit(options.alloc6, index, label, "alloc6"):
        return net, False
    options = structs.replace(options, alloc6=_write_bit(options.alloc6, index, False, label, "alloc6"))
    return _with_options(net, options), True


def free_all(net: Network, ip4: str, ip6: str) -> tuple[Network, bool]:
    """Free both addresses of an interface (GarbageCollectIps): (network, changed)."""
    net, changed4 = free(net, ip4)
    net, changed6 = free(net, ip6)
    return net, changed4 or changed6


def allocated_by_danm(address: str, cidr: str) -> bool:
    """§6.7 WasIpAllocatedByDanm: ``address`` (bare or CIDR form) lies inside ``cidr``."""
    if address == "" or cidr == "":
        return False
    parsed = _parse_any_address(address)
    if parsed is None:
        return False
    try:
        network = ip_network(cidr.strip(), strict=False)
    except ValueError:
        return False
    if parsed.version != network.version:
        return False
    return parsed in network


# --------------------------------------------------------------------------------------------
# Inspection (danm ipam show / check)


def _decode_all(bitmap: str, label: str, field: str) -> bytes:
    try:
        return binascii.a2b_base64(bitmap, strict_mode=True)
    except binascii.Error as decode_error:
        raise _bad_bitmap(label, field, str(decode_error)) from None


def _count_set(data: bytes, begin: int, end: int) -> int:
    """Set bits with index in [begin, end] (MSB-first numbering)."""
    if end < begin:
        return 0
    total = len(data) * 8
    value = int.from_bytes(data, "big")
    low = total - 1 - end
    width = end - begin + 1
    return ((value >> low) & ((1 << width) - 1)).bit_count()


def _family_usage(
    network: IPv4Network | IPv6Network,
    bitmap: str,
    start: str,
    end: str,
    last_ip: str,
    label: str,
    field: str,
) -> dict[str, str | int]:
    _check_bitmap(bitmap, network.num_addresses, label, field)
    begin, stop = _pool_bounds(network, start, end, label, field)
    data = _decode_all(bitmap, label, field)
    used = _count_set(data, begin, stop)
    return {
        "poolStart": start,
        "poolEnd": end,
        "used": used,
        "free": stop - begin + 1 - used,
        "lastIp": last_ip,
    }


def usage(net: Network) -> dict[str, dict[str, str | int] | None]:
    """Per family (``ipv4``, ``ipv6``): cidr, pool bounds, used/free pool addresses, lastIp.

    ``None`` for a family without a subnet. An uninitialised network is shown as it would be
    initialised (nothing is written).
    """
    label = network_label(net)
    options = initialise(net).spec.options
    result: dict[str, dict[str, str | int] | None] = {"ipv4": None, "ipv6": None}
    if options.cidr != "":
        pool = options.allocation_pool
        assert pool is not None
        network4 = _parse_v4_cidr(options.cidr, label)
        entry = _family_usage(network4, options.alloc, pool.start, pool.end, pool.last_ip, label, "alloc")
        entry["cidr"] = options.cidr
        result["ipv4"] = entry
    if options.net6 != "":
        pool6 = options.allocation_pool_v6
        assert pool6 is not None
        tracked = _parse_v6_cidr(pool6.cidr, label, "allocation_pool_v6.cidr")
        entry6 = _family_usage(tracked, options.alloc6, pool6.start, pool6.end, pool6.last_ip, label, "alloc6")
        entry6["cidr"] = options.net6
        entry6["poolCidr"] = pool6.cidr
        result["ipv6"] = entry6
    return result


def _set_indices(data: bytes) -> list[int]:
    indices: list[int] = []
    for byte_index in range(len(data)):
        byte = data[byte_index]
        if byte == 0:
            continue
        for bit in range(8):
            if byte & (0x80 >> bit):
                indices.append((byte_index << 3) + bit)
    return indices


def set_addresses(net: Network) -> tuple[set[str], set[str]]:
    """The bare addresses whose bits are set in ``alloc`` and ``alloc6`` (uninitialised → empty).

    This includes the network, last and gateway addresses (see ``infrastructure_addresses``).
    """
    label = network_label(net)
    options = net.spec.options
    found4: set[str] = set()
    found6: set[str] = set()
    if options.cidr != "" and options.alloc != "":
        network4 = _parse_v4_cidr(options.cidr, label)
        _check_bitmap(options.alloc, network4.num_addresses, label, "alloc")
        base4 = int(network4.network_address)
        limit4 = network4.num_addresses
        for index in _set_indices(_decode_all(options.alloc, label, "alloc")):
            if index < limit4:
                found4.add(str(IPv4Address(base4 + index)))
    pool6 = options.allocation_pool_v6
    if options.net6 != "" and options.alloc6 != "" and pool6 is not None and pool6.cidr != "":
        tracked = _parse_v6_cidr(pool6.cidr, label, "allocation_pool_v6.cidr")
        _check_bitmap(options.alloc6, tracked.num_addresses, label, "alloc6")
        base6 = int(tracked.network_address)
        limit6 = tracked.num_addresses
        for index in _set_indices(_decode_all(options.alloc6, label, "alloc6")):
            if index < limit6:
                found6.add(str(IPv6Address(base6 + index)))
    return found4, found6


def infrastructure_addresses(net: Network) -> tuple[set[str], set[str]]:
    """The tracked addresses no pod owns (network, last, route gateways), for ``ipam check``."""
    label = network_label(net)
    options = initialise(net).spec.options
    found4: set[str] = set()
    found6: set[str] = set()
    if options.cidr != "":
        network4 = _parse_v4_cidr(options.cidr, label)
        base4 = int(network4.network_address)
        for index in _protected_indices(network4, options.routes):
            found4.add(str(IPv4Address(base4 + index)))
    pool6 = options.allocation_pool_v6
    if options.net6 != "" and pool6 is not None:
        tracked = _parse_v6_cidr(pool6.cidr, label, "allocation_pool_v6.cidr")
        base6 = int(tracked.network_address)
        for index in _protected_indices(tracked, options.routes6):
            found6.add(str(IPv6Address(base6 + index)))
    return found4, found6


# --------------------------------------------------------------------------------------------
# The I/O shell: reserve and free against the API, retrying on 409 until the caller's deadline


class IpamDeadlineError(IpamError):
    """The deadline expired while conflicting writers kept moving the network (CNI: try again)."""


class ApiReservation:
    """What a reservation through the API did: the addresses, whether it was written, conflicts."""

    def __init__(self, reservation: Reservation, persisted: bool, conflicts: int) -> None:
        self.reservation = reservation
        self.persisted = persisted
        self.conflicts = conflicts

    @property
    def ip4(self) -> str:
        return self.reservation.ip4

    @property
    def ip6(self) -> str:
        return self.reservation.ip6


def _backoff(conflicts: int, deadline: float) -> None:
    """Jittered exponential backoff between attempts, never past the deadline."""
    delay = random.uniform(0.0, min(0.5, 0.005 * (2 ** min(conflicts, 7))))
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(min(delay, remaining))


def _expired(what: str, kind: str, namespace: str, name: str, conflicts: int) -> IpamDeadlineError:
    where = f"{kind or 'DanmNet'} {namespace + '/' if namespace else ''}{name}"
    return IpamDeadlineError(
        f"{what} on {where} gave up: the deadline expired after {conflicts} conflicting write(s); try again"
    )


def _check_untracked_v6(
    client: kube.ApiClient, net: Network, kind: str, ip6: str, deadline: float
) -> None:
    """A static IPv6 outside the tracked pool6 cidr is refused when a DanmEp already holds it."""
    if ip6 in ("", "none", "dynamic"):
        return
    pool6 = net.spec.options.allocation_pool_v6
    if pool6 is not None and pool6.cidr and allocated_by_danm(ip6, pool6.cidr):
        return
    wanted = ip6.split("/", 1)[0]
    namespace = "" if kind == "ClusterNetwork" else net.metadata.namespace
    endpoints, _ = client.list(kube.DANMEPS, namespace, DanmEp, deadline=deadline)
    for endpoint in endpoints:
        spec = endpoint.spec
        if spec.network_name != net.metadata.name or (spec.api_type or "DanmNet") != (kind or "DanmNet"):
            continue
        if spec.interface.address_ipv6.split("/", 1)[0] == wanted:
            raise AddressInUseError(
                f"IPv6 address {wanted} of network {net.metadata.name} is already used by DanmEp "
                f"{endpoint.metadata.namespace}/{endpoint.metadata.name}"
            )


# Each IPAM write carries a fresh mark, so that a write whose answer was lost is recognised.
WRITE_MARK: Final = "danm.io/ipam-write"


def _marked(net: Network, mark: str) -> Network:
    annotations = dict(net.metadata.annotations or {})
    annotations[WRITE_MARK] = mark
    return structs.replace(net, metadata=structs.replace(net.metadata, annotations=annotations))


def _guarded_update(
    client: kube.ApiClient,
    kind: str,
    namespace: str,
    name: str,
    deadline: float,
    what: str,
    plan: Callable[[Network], Reservation],
) -> ApiReservation:
    """Read the network, plan the change, write it guarded by the resourceVersion read.

    On 409 the network is read again and the whole change redone on the fresh object, with
    jittered backoff, until ``deadline`` (``time.monotonic()``); then IpamDeadlineError.
    IpamErrors of the plan itself (exhausted, in use, ...) are raised at once.
    """
    resource = kube.network_resource(kind)
    conflicts = 0
    while True:
        try:
            net = client.get(resource, namespace, name, Network, deadline=deadline)
            if net.kind != (kind or "DanmNet"):
                net = structs.replace(net, kind=kind or "DanmNet")
            result = plan(net)
            if not result.changed:
                return ApiReservation(result, False, conflicts)
            mark = uuid.uuid4().hex
            try:
                written = client.apply_change(resource, net, _marked(result.network, mark), deadline=deadline)
            except kube.Conflict:
                # The client repeats a guarded patch whose answer was lost; if the first one was
                # applied, the repeat gets 409 although the change is ours. Re-planning then
                # would reserve a second address (or free one another pod took meanwhile).
                stored = client.get(resource, namespace, name, Network, deadline=deadline)
                if (stored.metadata.annotations or {}).get(WRITE_MARK) != mark:
                    raise
                written = stored
            return ApiReservation(Reservation(written, result.ip4, result.ip6, True), True, conflicts)
        except kube.Conflict:
            conflicts += 1
        except kube.DeadlineExceeded:
            raise _expired(what, kind, namespace, name, conflicts) from None
        if time.monotonic() >= deadline:
            raise _expired(what, kind, namespace, name, conflicts)
        _backoff(conflicts, deadline)


def reserve_on_api(
    client: kube.ApiClient,
    kind: str,
    namespace: str,
    name: str,
    ip4: str,
    ip6: str,
    deadline: float,
) -> ApiReservation:
    """Reserve on the stored network (see _guarded_update for the retries)."""

    def plan(net: Network) -> Reservation:
        result = reserve(net, ip4, ip6)
        _check_untracked_v6(client, result.network, kind, result.ip6, deadline)
        return result

    return _guarded_update(client, kind, namespace, name, deadline, "IP reservation", plan)


def free_on_api(
    client: kube.ApiClient,
    kind: str,
    namespace: str,
    name: str,
    ip4: str,
    ip6: str,
    deadline: float,
) -> tuple[bool, int]:
    """Free both addresses on the stored network; returns (whether it was written, conflicts)."""

    def plan(net: Network) -> Reservation:
        freed, changed = free_all(net, ip4, ip6)
        return Reservation(freed, "", "", changed)

    done = _guarded_update(client, kind, namespace, name, deadline, "IP release", plan)
    return done.persisted, done.conflicts


# --------------------------------------------------------------------------------------------
# Audit: bitmaps against the DanmEps that reference the network (`danm ipam check`)


class Finding:
    """One inconsistency: a leak (bit set, no DanmEp) or corruption (DanmEp, bit not set)."""

    def __init__(self, problem: str, kind: str, namespace: str, network: str, address: str, detail: str = "") -> None:
        self.problem = problem  # "leak" or "corruption"
        self.kind = kind
        self.namespace = namespace
        self.network = network
        self.address = address
        self.detail = detail

    def key(self) -> tuple[str, str, str, str, str]:
        return (self.problem, self.kind, self.namespace, self.network, self.address)

    def __str__(self) -> str:
        where = f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.network}"
        if self.problem == "leak":
            return f"leak: {where}: {self.address} is marked used but no DanmEp holds it"
        return f"corruption: {where}: {self.address} of DanmEp {self.detail} is not marked used"


def audit(networks: list[Network], endpoints: list[DanmEp]) -> list[Finding]:
    """Leaks and corruption of every network, given every DanmEp (pure)."""
    findings: list[Finding] = []
    for net in networks:
        kind = net.kind or "DanmNet"
        name = net.metadata.name
        namespace = "" if kind == "ClusterNetwork" else net.metadata.namespace
        held4: dict[str, str] = {}
        held6: dict[str, str] = {}
        for endpoint in endpoints:
            spec = endpoint.spec
            if spec.network_name != name or (spec.api_type or "DanmNet") != kind:
                continue
            if kind != "ClusterNetwork" and endpoint.metadata.namespace != namespace:
                continue
            label = f"{endpoint.metadata.namespace}/{endpoint.metadata.name}"
            if spec.interface.address not in ("", "none"):
                held4[spec.interface.address.split("/", 1)[0]] = label
            if spec.interface.address_ipv6 not in ("", "none"):
                held6[spec.interface.address_ipv6.split("/", 1)[0]] = label
        used4, used6 = set_addresses(net)
        reserved4, reserved6 = infrastructure_addresses(net)
        options = net.spec.options
        pool6 = options.allocation_pool_v6.cidr if options.allocation_pool_v6 is not None else ""
        for family_used, reserved, held, cidr in (
            (used4, reserved4, held4, options.cidr),
            (used6, reserved6, held6, pool6),
        ):
            for address in sorted(family_used - reserved - set(held)):
                findings.append(Finding("leak", kind, namespace, name, address))
            for address, holder in sorted(held.items()):
                if cidr and allocated_by_danm(address, cidr) and address not in family_used:
                    findings.append(Finding("corruption", kind, namespace, name, address, holder))
    return findings
