"""The pure IPAM core: bitmaps bit-exact with the original, pools, reserve/free, inspection."""

import base64
import random
import statistics
import time
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from danm import ipam
from danm.errors import DanmError
from danm.types import (
    AllocationPool,
    AllocationPoolV6,
    Network,
    NetworkOptions,
    NetworkSpec,
    ObjectMeta,
)
from testlib import load_fixture


def make_net(
    cidr: str = "",
    net6: str = "",
    routes: dict[str, str] | None = None,
    routes6: dict[str, str] | None = None,
    start: str = "",
    end: str = "",
    last_ip: str = "",
    pool6_cidr: str = "",
    start6: str = "",
    end6: str = "",
    alloc: str = "",
) -> Network:
    options = NetworkOptions(
        cidr=cidr,
        net6=net6,
        routes=routes,
        routes6=routes6,
        alloc=alloc,
        allocation_pool=AllocationPool(start=start, end=end, last_ip=last_ip),
        allocation_pool_v6=AllocationPoolV6(start=start6, end=end6, cidr=pool6_cidr),
    )
    return Network(
        metadata=ObjectMeta(name="net1", namespace="ns1"),
        spec=NetworkSpec(network_id="net1", options=options),
    )


def fixture_net(name: str) -> Network:
    return msgspec.convert(load_fixture(name), Network)


def bits_of(alloc: str) -> set[int]:
    data = base64.b64decode(alloc)
    return {i for i in range(len(data) * 8) if data[i // 8] & (0x80 >> (i % 8))}


def with_alloc(net: Network, alloc: str) -> Network:
    options = msgspec.structs.replace(net.spec.options, alloc=alloc)
    return msgspec.structs.replace(net, spec=msgspec.structs.replace(net.spec, options=options))


def with_last_ip(net: Network, last_ip: str) -> Network:
    pool = net.spec.options.allocation_pool
    assert pool is not None
    options = msgspec.structs.replace(
        net.spec.options, allocation_pool=msgspec.structs.replace(pool, last_ip=last_ip)
    )
    return msgspec.structs.replace(net, spec=msgspec.structs.replace(net.spec, options=options))


def pool(net: Network) -> AllocationPool:
    assert net.spec.options.allocation_pool is not None
    return net.spec.options.allocation_pool


def pool6(net: Network) -> AllocationPoolV6:
    assert net.spec.options.allocation_pool_v6 is not None
    return net.spec.options.allocation_pool_v6


# --------------------------------------------------------------------------------------------
# Bitmaps


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (2, "kA=="),
        (6, "gAAAAAAAAAE="),
        (8, "gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="),
    ],
)
def test_reference_vectors(k: int, expected: str) -> None:
    assert ipam.new_bitmap(k) == expected


@pytest.mark.parametrize(("cidr", "expected"), [("10.0.0.0/30", "kA=="), ("10.0.0.0/26", "gAAAAAAAAAE=")])
def test_initialise_writes_the_reference_vectors(cidr: str, expected: str) -> None:
    assert ipam.initialise(make_net(cidr)).spec.options.alloc == expected


def test_route_gateway_is_reserved() -> None:
    net = ipam.initialise(make_net("10.0.0.0/24", routes={"10.60.0.0/16": "10.0.0.1"}))
    data = base64.b64decode(net.spec.options.alloc)
    assert data[0] == 0xC0
    assert bits_of(net.spec.options.alloc) == {0, 1, 255}


def test_gateways_outside_or_at_the_edge_of_the_bitmap() -> None:
    # the original panicked at index == length; a gateway outside the subnet is not tracked
    routes = {"a": "10.0.1.0", "b": "10.0.0.255", "c": "192.168.0.1", "d": "not-an-ip", "e": "fd00::1"}
    net = ipam.initialise(make_net("10.0.0.0/24", routes=routes))
    assert bits_of(net.spec.options.alloc) == {0, 255}


def test_bitmap_sizes_and_limits() -> None:
    assert len(base64.b64decode(ipam.new_bitmap(0))) == 1
    assert bits_of(ipam.new_bitmap(0)) == {0}
    assert bits_of(ipam.new_bitmap(3)) == {0, 7}
    big = ipam.new_bitmap(23)
    assert len(base64.b64decode(big)) == 1 << 20
    with pytest.raises(ipam.InvalidNetworkError, match=r"more than 2\^23"):
        ipam.new_bitmap(24)


def test_ipv4_mask_must_be_at_least_slash_9() -> None:
    ipam.initialise(make_net("10.0.0.0/9"))
    with pytest.raises(ipam.InvalidNetworkError, match="/9"):
        ipam.initialise(make_net("10.0.0.0/8"))
    with pytest.raises(ipam.InvalidNetworkError, match="/9"):
        ipam.reserve(make_net("10.0.0.0/8"), "dynamic", "")


def test_bitmaps_written_by_the_original_are_read() -> None:
    net = fixture_net("danmnet.json")
    assert bits_of(net.spec.options.alloc) == {0, 1, 10, 11, 12, 255}
    found4, found6 = ipam.set_addresses(net)
    assert found4 == {f"10.100.20.{i}" for i in (0, 1, 10, 11, 12, 255)}
    assert found6 == set()
    reservation = ipam.reserve(net, "dynamic", "")
    assert reservation.ip4 == "10.100.20.13/24"
    assert reservation.changed
    assert pool(reservation.network).last_ip == "10.100.20.13/24"
    assert bits_of(reservation.network.spec.options.alloc) == {0, 1, 10, 11, 12, 13, 255}
    # everything else is untouched
    assert reservation.network.metadata == net.metadata
    assert msgspec.structs.replace(
        reservation.network.spec.options,
        alloc=net.spec.options.alloc,
        allocation_pool=net.spec.options.allocation_pool,
    ) == net.spec.options


def test_cluster_network_fixture_dual_stack() -> None:
    net = fixture_net("clusternetwork.json")
    reservation = ipam.reserve(net, "dynamic", "dynamic")
    assert reservation.ip4 == "10.20.0.3/24"  # .0, .1 (gateway) and .2 are set; lastIp .2
    assert reservation.ip6 == "2001:db8:20::2/64"  # the net6 prefix, not the pool6 /120
    assert pool6(reservation.network).last_ip == "2001:db8:20::2/64"
    assert bits_of(reservation.network.spec.options.alloc6) == {0, 1, 2, 255}


def test_corrupt_bitmaps_are_refused() -> None:
    net = make_net("10.0.0.0/24", start="10.0.0.1", end="10.0.0.254")
    for bad in ("kA==", "A" * 44, "gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", "gA!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="):
        with pytest.raises(ipam.InvalidNetworkError, match="alloc allocation bitmap is corrupt"):
            ipam.reserve(with_alloc(net, bad), "dynamic", "")


def naive_first_clear(data: bytes, lo: int, hi: int) -> int:
    for i in range(lo, hi + 1):
        if not data[i // 8] & (0x80 >> (i % 8)):
            return i
    return -1


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from([0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x7F, 0xFE, 0xEF]), min_size=1, max_size=120),
    st.data(),
)
def test_find_clear_agrees_with_a_naive_scan(raw: list[int], data: st.DataObject) -> None:
    blob = bytes(raw)
    text = base64.b64encode(blob).decode()
    nbits = len(blob) * 8
    lo = data.draw(st.integers(0, nbits - 1))
    hi = data.draw(st.integers(lo, nbits - 1))
    assert ipam._find_clear(text, lo, hi, "t", "alloc") == naive_first_clear(blob, lo, hi)


def test_find_clear_skips_long_full_runs() -> None:
    nbytes = 1 << 20
    blob = bytearray(b"\xff" * nbytes)
    blob[nbytes - 5] = 0xFB
    text = base64.b64encode(bytes(blob)).decode()
    assert ipam._find_clear(text, 3, nbytes * 8 - 1, "t", "alloc") == (nbytes - 5) * 8 + 5
    assert ipam._find_clear(text, 3, (nbytes - 5) * 8 + 4, "t", "alloc") == -1


# --------------------------------------------------------------------------------------------
# Pools


def test_init_alloc_pool_defaults() -> None:
    start, end, alloc = ipam.init_alloc_pool("10.0.0.0/24", "", "", "", None)
    assert (start, end, alloc) == ("10.0.0.1", "10.0.0.254", ipam.new_bitmap(8))
    assert ipam.init_alloc_pool("10.0.0.0/24", "10.0.0.5", "10.0.0.9", "kA==", None) == (
        "10.0.0.5",
        "10.0.0.9",
        "kA==",
    )
    assert ipam.init_alloc_pool("", "", "", "", None) == ("", "", "")
    assert ipam.init_alloc_pool("10.0.0.7/24", "", "", "x", None)[:2] == ("10.0.0.1", "10.0.0.254")
    start6, end6, _ = ipam.init_alloc_pool("fd00::/120", "", "", "", None)
    assert (start6, end6) == ("fd00::1", "fd00::fe")
    with pytest.raises(ipam.InvalidNetworkError, match="too small"):
        ipam.init_alloc_pool("10.0.0.0/31", "", "", "", None)


@pytest.mark.parametrize(
    ("cidr", "net6", "max_prefix", "pool6_cidr"),
    [
        ("", "2001:db8::/64", 105, "2001:db8::/105"),
        ("10.0.0.0/24", "2001:db8::/64", 106, "2001:db8::/106"),
        ("10.0.0.0/26", "2001:db8::/64", 106, "2001:db8::/106"),
        ("10.0.0.0/9", "2001:db8::/64", 128, "2001:db8::/128"),
        ("", "2001:db8::/120", 105, "2001:db8::/120"),
        ("10.0.0.0/24", "2001:db8::/120", 106, "2001:db8::/120"),
    ],
)
def test_ipv6_pool_sizing(cidr: str, net6: str, max_prefix: int, pool6_cidr: str) -> None:
    net = make_net(cidr, net6)
    assert ipam.max_usable_v6_prefix(net) == max_prefix
    assert ipam.default_pool6_cidr(net) == pool6_cidr


def test_no_room_for_ipv6_beside_a_slash_9() -> None:
    net = make_net("10.0.0.0/9", "2001:db8::/64")
    with pytest.raises(ipam.InvalidNetworkError, match="no room for an IPv6 allocation pool"):
        ipam.initialise(net)
    with pytest.raises(ipam.InvalidNetworkError):
        ipam.reserve(net, "", "dynamic")
    assert ipam.reserve(net, "dynamic", "").ip4 == "10.0.0.1/9"  # IPv4 alone still works


def test_lazy_initialisation_of_ipv4() -> None:
    net = Network(spec=NetworkSpec(options=NetworkOptions(cidr="10.1.0.0/24", routes={"x": "10.1.0.1"})))
    assert net.spec.options.allocation_pool is None
    reservation = ipam.reserve(net, "dynamic", "")
    assert reservation.ip4 == "10.1.0.2/24"
    options = reservation.network.spec.options
    assert options.allocation_pool == AllocationPool("10.1.0.1", "10.1.0.254", "10.1.0.2/24")
    assert bits_of(options.alloc) == {0, 1, 2, 255}
    assert net.spec.options.alloc == ""  # the input is never modified


def test_lazy_initialisation_of_ipv6() -> None:
    net = make_net("10.0.0.0/24", "2001:db8:1::/64", routes6={"::/0": "2001:db8:1::1"})
    reservation = ipam.reserve(net, "", "dynamic")
    assert reservation.ip6 == "2001:db8:1::2/64"
    assert reservation.changed
    assert pool6(reservation.network) == AllocationPoolV6(
        start="2001:db8:1::1", end="2001:db8:1::3f:fffe", last_ip="2001:db8:1::2/64", cidr="2001:db8:1::/106"
    )
    assert bits_of(reservation.network.spec.options.alloc6) == {0, 1, 2, (1 << 22) - 1}
    # IPv4 was not asked for, so it stays uninitialised
    assert reservation.network.spec.options.alloc == ""


def test_initialise_is_idempotent_and_keeps_identity() -> None:
    net = ipam.initialise(make_net("10.0.0.0/24", "fd00::/120"))
    assert ipam.initialise(net) is net
    l2 = fixture_net("danmnet_l2.json")
    assert ipam.initialise(l2) is l2


def test_validation_helpers() -> None:
    ipam.check_pool("10.0.0.0/24", "10.0.0.1", "10.0.0.2")
    with pytest.raises(ipam.InvalidNetworkError, match="outside of the defined CIDR"):
        ipam.check_pool("10.0.0.0/24", "10.0.0.1", "10.0.1.2", "DanmNet a/b")
    with pytest.raises(ipam.InvalidNetworkError, match="bigger than or equal"):
        ipam.check_pool("10.0.0.0/24", "10.0.0.5", "10.0.0.5")
    with pytest.raises(ipam.InvalidNetworkError, match="not a valid address"):
        ipam.check_pool("10.0.0.0/24", "fd00::1", "10.0.0.5")
    with pytest.raises(ipam.InvalidNetworkError, match="not a valid IPv4 subnet"):
        ipam.check_v4_cidr("fd00::/64")
    with pytest.raises(ipam.InvalidNetworkError, match="invalid CIDR"):
        ipam.check_v4_cidr("10.0.0.0/33")
    ipam.validate(make_net("10.0.0.0/24", "fd00::/64"))
    with pytest.raises(ipam.InvalidNetworkError, match="exceeds the maximum"):
        ipam.validate(make_net("10.0.0.0/24", "fd00::/64", pool6_cidr="fd00::/105"))
    with pytest.raises(ipam.InvalidNetworkError, match="outside of the defined IPv6 subnet"):
        ipam.validate(make_net("", "fd00::/64", pool6_cidr="fd01::/120"))
    with pytest.raises(ipam.InvalidNetworkError, match="without CIDR"):
        ipam.validate(make_net("", start="10.0.0.1"))
    with pytest.raises(ipam.InvalidNetworkError, match="without net6"):
        ipam.validate(make_net("10.0.0.0/24", pool6_cidr="fd00::/120"))
    with pytest.raises(ipam.InvalidNetworkError, match="bigger than or equal"):
        ipam.validate(make_net("10.0.0.0/24", start="10.0.0.9", end="10.0.0.3"))


# --------------------------------------------------------------------------------------------
# Reserve


def small_net() -> Network:
    return make_net("10.0.0.0/24", start="10.0.0.10", end="10.0.0.13")


def test_dynamic_is_next_fit_and_wraps_to_the_pool_start() -> None:
    net = small_net()
    got = []
    for _ in range(3):
        reservation = ipam.reserve(net, "dynamic", "")
        net = reservation.network
        got.append(reservation.ip4)
    assert got == ["10.0.0.10/24", "10.0.0.11/24", "10.0.0.12/24"]
    net = ipam.reserve(net, "10.0.0.13", "").network
    net, changed = ipam.free(net, "10.0.0.10/24")
    assert changed
    net, _ = ipam.free(net, "10.0.0.11")
    # after lastIp .12 comes .13 (taken), then the wrap starts AT the pool start (the original skipped it)
    reservation = ipam.reserve(net, "dynamic", "")
    assert reservation.ip4 == "10.0.0.10/24"
    # next-fit: .11 was freed before .10 was handed out again, and comes next
    assert ipam.reserve(reservation.network, "dynamic", "").ip4 == "10.0.0.11/24"


def test_next_fit_does_not_reuse_the_freed_last_address_first() -> None:
    net = small_net()
    net = ipam.reserve(net, "dynamic", "").network  # .10
    net, _ = ipam.free(net, "10.0.0.10")
    assert pool(net).last_ip == "10.0.0.10/24"
    assert ipam.reserve(net, "dynamic", "").ip4 == "10.0.0.11/24"


@pytest.mark.parametrize("last_ip", ["10.0.0.11", "10.0.0.11/24", "10.0.0.11/8"])
def test_last_ip_in_bare_and_cidr_form(last_ip: str) -> None:
    net = with_last_ip(ipam.initialise(small_net()), last_ip)
    reservation = ipam.reserve(net, "dynamic", "")
    assert reservation.ip4 == "10.0.0.12/24"
    assert pool(reservation.network).last_ip == "10.0.0.12/24"


@pytest.mark.parametrize("last_ip", ["", "garbage", "10.0.0.200/24", "10.0.0.9", "fd00::1", "10.0.0.13"])
def test_unusable_last_ip_starts_at_the_pool_start(last_ip: str) -> None:
    net = with_last_ip(ipam.initialise(small_net()), last_ip)
    assert ipam.reserve(net, "dynamic", "").ip4 == "10.0.0.10/24"


def test_pool_exhausted() -> None:
    net = small_net()
    for _ in range(4):
        net = ipam.reserve(net, "dynamic", "").network
    with pytest.raises(ipam.PoolExhaustedError, match="DanmNet ns1/net1.*all addresses of the pool.*reserved"):
        ipam.reserve(net, "dynamic", "")
    # addresses outside the pool can still be reserved statically
    assert ipam.reserve(net, "10.0.0.50/16", "").ip4 == "10.0.0.50/24"


def test_static_ipv4() -> None:
    net = small_net()
    inside = ipam.reserve(net, "10.0.0.11/32", "")
    assert inside.ip4 == "10.0.0.11/24"
    assert 11 in bits_of(inside.network.spec.options.alloc)
    assert pool(inside.network).last_ip == ""  # static reservations do not move the next-fit pointer
    outside_pool = ipam.reserve(inside.network, "10.0.0.100", "")
    assert outside_pool.ip4 == "10.0.0.100/24"
    assert {11, 100} <= bits_of(outside_pool.network.spec.options.alloc)
    with pytest.raises(ipam.AddressInUseError, match="DanmNet ns1/net1: IP address 10.0.0.11 is already in use") as error:
        ipam.reserve(outside_pool.network, "10.0.0.11", "")
    assert error.value.address == "10.0.0.11"
    assert error.value.network == "DanmNet ns1/net1"
    # the network address, broadcast and gateways are in use from the start
    for taken in ("10.0.0.0", "10.0.0.255"):
        with pytest.raises(ipam.AddressInUseError):
            ipam.reserve(net, taken, "")
    with pytest.raises(ipam.OutsideCidrError, match="10.0.1.1 is outside the network's CIDR: 10.0.0.0/24"):
        ipam.reserve(net, "10.0.1.1", "")
    for bad in ("10.0.0.256", "garbage", "fd00::1", "dynamicx", " "):
        with pytest.raises(ipam.InvalidAddressError, match="is not a valid IPv4 address"):
            ipam.reserve(net, bad, "")


def test_static_ipv6() -> None:
    net = make_net("", "2001:db8::/64", pool6_cidr="2001:db8::/120", start6="2001:db8::10", end6="2001:db8::20")
    tracked = ipam.reserve(net, "", "2001:db8::5/128")
    assert tracked.ip6 == "2001:db8::5/64"
    assert 5 in bits_of(tracked.network.spec.options.alloc6)
    with pytest.raises(ipam.AddressInUseError, match="2001:db8::5 is already in use"):
        ipam.reserve(tracked.network, "", "2001:db8::5")
    # inside net6 but outside the tracked pool6 cidr: allowed, not tracked, nothing to write
    initialised = ipam.initialise(net)
    untracked = ipam.reserve(initialised, "", "2001:db8::1:1")
    assert untracked.ip6 == "2001:db8::1:1/64"
    assert not untracked.changed
    assert untracked.network is initialised
    with pytest.raises(ipam.OutsideCidrError, match="outside the network's CIDR: 2001:db8::/64"):
        ipam.reserve(net, "", "2001:db9::1")
    for bad in ("10.0.0.1", "2001:db8::g", "fe80::1%eth0", "dynamic6"):
        with pytest.raises(ipam.InvalidAddressError, match="is not a valid IPv6 address"):
            ipam.reserve(net, "", bad)


def test_ipv6_indices_are_not_truncated() -> None:
    net = make_net("", "2001:db8::/64")  # pool6 /105: 2^23 addresses
    address = str(IPv6Address("2001:db8::") + (1 << 23) - 2)
    reservation = ipam.reserve(net, "", address)
    assert reservation.ip6 == f"{address}/64"
    assert (1 << 23) - 2 in bits_of(reservation.network.spec.options.alloc6)
    net2 = with_last_ip(ipam.initialise(make_net("10.0.0.0/24")), "")
    assert net2.spec.options.alloc6 == ""


def test_none_and_empty_requests_change_nothing() -> None:
    net = small_net()
    reservation = ipam.reserve(net, "none", "none")
    assert (reservation.ip4, reservation.ip6, reservation.changed) == ("none", "none", False)
    assert reservation.network is net
    empty = ipam.reserve(net, "", "")
    assert (empty.ip4, empty.ip6, empty.changed) == ("", "", False)
    assert empty.network is net
    l2 = fixture_net("danmnet_l2.json")
    assert ipam.reserve(l2, "none", "none").network is l2


def test_l2_network() -> None:
    l2 = fixture_net("danmnet_l2.json")
    with pytest.raises(ipam.L2NetworkError, match="DanmNet default/l2: IP address cannot be allocated for an L2 network"):
        ipam.reserve(l2, "dynamic", "")
    with pytest.raises(ipam.L2NetworkError, match="no IPv6 net6"):
        ipam.reserve(l2, "none", "dynamic")
    with pytest.raises(ipam.L2NetworkError):
        ipam.reserve(make_net("10.0.0.0/24"), "", "fd00::1")


def test_dual_stack_failure_keeps_nothing() -> None:
    net = make_net("10.0.0.0/24", "fd00::/120")
    before = msgspec.json.encode(net)
    with pytest.raises(ipam.OutsideCidrError):
        ipam.reserve(net, "dynamic", "fd01::1")
    with pytest.raises(ipam.L2NetworkError):
        ipam.reserve(make_net("10.0.0.0/24"), "dynamic", "dynamic")
    assert msgspec.json.encode(net) == before
    both = ipam.reserve(net, "dynamic", "dynamic")
    assert (both.ip4, both.ip6) == ("10.0.0.1/24", "fd00::1/120")


def test_errors_are_distinct_ipam_errors() -> None:
    classes = [
        ipam.L2NetworkError,
        ipam.PoolExhaustedError,
        ipam.OutsideCidrError,
        ipam.AddressInUseError,
        ipam.InvalidAddressError,
        ipam.InvalidNetworkError,
    ]
    assert len(set(classes)) == len(classes)
    for cls in classes:
        assert issubclass(cls, ipam.IpamError)
        assert issubclass(cls, DanmError)
        for other in classes:
            assert cls is other or not issubclass(cls, other)


# --------------------------------------------------------------------------------------------
# Free


def test_free_is_idempotent_and_ignores_what_it_cannot_free() -> None:
    net = ipam.reserve(make_net("10.0.0.0/24", routes={"x": "10.0.0.1"}), "10.0.0.7", "").network
    freed, changed = ipam.free(net, "10.0.0.7/24")
    assert changed
    assert 7 not in bits_of(freed.spec.options.alloc)
    again, changed_again = ipam.free(freed, "10.0.0.7")
    assert not changed_again
    assert again is freed
    for nothing in ("", "none", "garbage", "10.0.1.7", "fd00::1", "10.0.0.0", "10.0.0.255", "10.0.0.1"):
        same, changed_nothing = ipam.free(net, nothing)
        assert not changed_nothing, nothing
        assert same is net
    l2 = fixture_net("danmnet_l2.json")
    assert ipam.free(l2, "10.0.0.1") == (l2, False)
    uninitialised = make_net("10.0.0.0/24")
    assert ipam.free(uninitialised, "10.0.0.5") == (uninitialised, False)


def test_free_ipv6_and_free_all() -> None:
    net = make_net("10.0.0.0/24", "fd00::/64", routes6={"::/0": "fd00::1"})
    reservation = ipam.reserve(net, "dynamic", "dynamic")
    assert (reservation.ip4, reservation.ip6) == ("10.0.0.1/24", "fd00::2/64")
    net = reservation.network
    freed, changed = ipam.free_all(net, reservation.ip4, reservation.ip6)
    assert changed
    assert bits_of(freed.spec.options.alloc) == {0, 255}
    assert bits_of(freed.spec.options.alloc6) == {0, 1, (1 << 22) - 1}
    assert ipam.free_all(freed, reservation.ip4, reservation.ip6) == (freed, False)
    assert ipam.free_all(freed, "", "none") == (freed, False)
    # v6 outside the tracked pool6 cidr is not tracked
    assert ipam.free(net, "fd00::1:0:0:1") == (net, False)


def test_allocated_by_danm() -> None:
    assert ipam.allocated_by_danm("10.0.0.5", "10.0.0.0/24")
    assert ipam.allocated_by_danm("10.0.0.5/24", "10.0.0.0/24")
    assert not ipam.allocated_by_danm("10.0.1.5/24", "10.0.0.0/24")
    assert ipam.allocated_by_danm("fd00::5/64", "fd00::/64")
    assert not ipam.allocated_by_danm("fd00::5/64", "10.0.0.0/24")
    assert not ipam.allocated_by_danm("", "10.0.0.0/24")
    assert not ipam.allocated_by_danm("none", "10.0.0.0/24")
    assert not ipam.allocated_by_danm("10.0.0.5", "")
    assert not ipam.allocated_by_danm("10.0.0.5", "garbage")


# --------------------------------------------------------------------------------------------
# Inspection


def test_usage() -> None:
    shown = ipam.usage(fixture_net("danmnet.json"))
    assert shown == {
        "ipv4": {
            "cidr": "10.100.20.0/24",
            "poolStart": "10.100.20.10",
            "poolEnd": "10.100.20.200",
            "used": 3,
            "free": 188,
            "lastIp": "10.100.20.12/24",
        },
        "ipv6": None,
    }
    cluster = ipam.usage(fixture_net("clusternetwork.json"))
    assert cluster["ipv4"] is not None and cluster["ipv4"]["used"] == 1
    assert cluster["ipv6"] == {
        "cidr": "2001:db8:20::/64",
        "poolCidr": "2001:db8:20::/120",
        "poolStart": "2001:db8:20::2",
        "poolEnd": "2001:db8:20::fe",
        "used": 0,
        "free": 253,
        "lastIp": "",
    }
    assert ipam.usage(fixture_net("danmnet_l2.json")) == {"ipv4": None, "ipv6": None}
    fresh = ipam.usage(make_net("10.0.0.0/24"))  # shown as it would be initialised
    assert fresh["ipv4"] is not None and (fresh["ipv4"]["used"], fresh["ipv4"]["free"]) == (0, 254)


def test_set_and_infrastructure_addresses() -> None:
    net = ipam.reserve(fixture_net("clusternetwork.json"), "10.20.0.77", "2001:db8:20::77").network
    found4, found6 = ipam.set_addresses(net)
    assert found4 == {"10.20.0.0", "10.20.0.1", "10.20.0.2", "10.20.0.77", "10.20.0.255"}
    assert found6 == {"2001:db8:20::", "2001:db8:20::1", "2001:db8:20::77", "2001:db8:20::ff"}
    infra4, infra6 = ipam.infrastructure_addresses(net)
    assert infra4 == {"10.20.0.0", "10.20.0.1", "10.20.0.255"}
    assert infra6 == {"2001:db8:20::", "2001:db8:20::1", "2001:db8:20::ff"}


# --------------------------------------------------------------------------------------------
# Property: random reserve/free sequences agree with a set-based model

V4_BASE = int(IPv4Address("10.9.0.0"))
V6_BASE = int(IPv6Address("fd00:9::"))
V4_POOL = (10, 20)
V6_POOL = (16, 31)

op_strategy = st.one_of(
    st.tuples(st.just("reserve"), st.sampled_from(["dynamic", "static", "none", ""]), st.sampled_from(["dynamic", "static", "none", ""]), st.integers(-2, 66), st.integers(-2, 258)),
    st.tuples(st.just("free4"), st.just(""), st.just(""), st.integers(-2, 66), st.just(0)),
    st.tuples(st.just("free6"), st.just(""), st.just(""), st.just(0), st.integers(-2, 258)),
)


class Model:
    def __init__(self, size: int, pool_range: tuple[int, int], protected: set[int]) -> None:
        self.size = size
        self.begin, self.end = pool_range
        self.protected = set(protected)
        self.allocated = set(protected)
        self.last = -1

    def dynamic(self) -> int | None:
        if self.begin <= self.last < self.end:
            order = list(range(self.last + 1, self.end + 1)) + list(range(self.begin, self.last + 1))
        else:
            order = list(range(self.begin, self.end + 1))
        for index in order:
            if index not in self.allocated:
                return index
        return None


def v4_text(offset: int) -> str:
    return str(IPv4Address(V4_BASE + offset)) if offset >= 0 else str(IPv4Address(V4_BASE - 1 + offset))


def v6_text(offset: int) -> str:
    return str(IPv6Address(V6_BASE + offset)) if offset >= 0 else f"fd00:8::{-offset}"


def expect_v4(model: Model, kind: str, offset: int) -> tuple[str, Any]:
    """(expected result or error class, index to add or None)."""
    if kind in ("", "none"):
        return kind, None
    if kind == "dynamic":
        index = model.dynamic()
        if index is None:
            return "exhausted", None
        return f"{IPv4Address(V4_BASE + index)}/26", index
    if offset < 0 or offset >= 64:
        return "outside", None
    if offset in model.allocated:
        return "inuse", None
    return f"{IPv4Address(V4_BASE + offset)}/26", offset


def expect_v6(model: Model, kind: str, offset: int) -> tuple[str, Any]:
    if kind in ("", "none"):
        return kind, None
    if kind == "dynamic":
        index = model.dynamic()
        if index is None:
            return "exhausted", None
        return f"{IPv6Address(V6_BASE + index)}/112", index
    if offset < 0:
        return "outside", None
    if offset >= 256:
        return f"{IPv6Address(V6_BASE + offset)}/112", None  # inside net6, untracked
    if offset in model.allocated:
        return "inuse", None
    return f"{IPv6Address(V6_BASE + offset)}/112", offset


ERRORS = {
    "exhausted": ipam.PoolExhaustedError,
    "outside": ipam.OutsideCidrError,
    "inuse": ipam.AddressInUseError,
}


@settings(max_examples=200, deadline=None)
@given(st.lists(op_strategy, max_size=80))
def test_reserve_and_free_agree_with_a_set_model(ops: list[tuple[str, str, str, int, int]]) -> None:
    net = make_net(
        "10.9.0.0/26",
        "fd00:9::/112",
        routes={"0.0.0.0/0": "10.9.0.1"},
        routes6={"::/0": "fd00:9::1"},
        start=v4_text(V4_POOL[0]),
        end=v4_text(V4_POOL[1]),
        pool6_cidr="fd00:9::/120",
        start6=v6_text(V6_POOL[0]),
        end6=v6_text(V6_POOL[1]),
    )
    net = ipam.initialise(net)
    m4 = Model(64, V4_POOL, {0, 1, 63})
    m6 = Model(256, V6_POOL, {0, 1, 255})
    for op, kind4, kind6, offset4, offset6 in ops:
        if op == "free4":
            net, changed = ipam.free(net, v4_text(offset4) + "/26")
            should = 0 <= offset4 < 64 and offset4 in m4.allocated and offset4 not in m4.protected
            assert changed == should
            if should:
                m4.allocated.discard(offset4)
        elif op == "free6":
            net, changed = ipam.free(net, v6_text(offset6))
            should = 0 <= offset6 < 256 and offset6 in m6.allocated and offset6 not in m6.protected
            assert changed == should
            if should:
                m6.allocated.discard(offset6)
        else:
            req4 = v4_text(offset4) if kind4 == "static" else kind4
            req6 = v6_text(offset6) if kind6 == "static" else kind6
            want4, add4 = expect_v4(m4, kind4, offset4)
            want6, add6 = expect_v6(m6, kind6, offset6)
            failure = want4 if want4 in ERRORS else want6 if want6 in ERRORS else None
            if failure is not None:
                with pytest.raises(ERRORS[failure]):
                    ipam.reserve(net, req4, req6)
                continue
            reservation = ipam.reserve(net, req4, req6)
            assert (reservation.ip4, reservation.ip6) == (want4, want6)
            assert reservation.changed == (add4 is not None or add6 is not None)
            if not reservation.changed:
                assert reservation.network is net
            net = reservation.network
            if add4 is not None:
                m4.allocated.add(add4)
                if kind4 == "dynamic":
                    m4.last = add4
            if add6 is not None:
                m6.allocated.add(add6)
                if kind6 == "dynamic":
                    m6.last = add6
        found4, found6 = ipam.set_addresses(net)
        assert found4 == {str(IPv4Address(V4_BASE + i)) for i in m4.allocated}
        assert found6 == {str(IPv6Address(V6_BASE + i)) for i in m6.allocated}
        expected_last4 = f"{IPv4Address(V4_BASE + m4.last)}/26" if m4.last >= 0 else ""
        expected_last6 = f"{IPv6Address(V6_BASE + m6.last)}/112" if m6.last >= 0 else ""
        assert pool(net).last_ip == expected_last4
        assert pool6(net).last_ip == expected_last6
        shown = ipam.usage(net)["ipv4"]
        assert shown is not None
        assert shown["used"] == len([i for i in m4.allocated if V4_POOL[0] <= i <= V4_POOL[1]])


# --------------------------------------------------------------------------------------------
# Speed sanity (printed, not asserted: the benchmark lives elsewhere)


def slash9_network(fill: float, random_fill: bool = False) -> Network:
    net = ipam.initialise(make_net("10.0.0.0/9"))
    nbytes = 1 << 20
    if random_fill:
        data = bytearray(random.Random(7).randbytes(nbytes))
    else:
        data = bytearray(nbytes)
        full = int(nbytes * fill)
        data[:full] = b"\xff" * full
    data[0] |= 0x80
    data[-1] |= 0x01
    return with_last_ip(with_alloc(net, base64.b64encode(bytes(data)).decode()), "10.0.0.1/9")


def test_timing_sanity_on_a_slash_9() -> None:
    cases = [("0%", slash9_network(0.0)), ("50%", slash9_network(0.5)), ("99.9%", slash9_network(0.999)), ("random 50%", slash9_network(0, True))]
    lines = []
    for name, net in cases:
        times = []
        reservation = None
        for _ in range(30):
            started = time.perf_counter()
            reservation = ipam.reserve(net, "dynamic", "")
            times.append(time.perf_counter() - started)
        assert reservation is not None
        address = IPv4Address(reservation.ip4.split("/")[0])
        assert not ipam._test_bit(net.spec.options.alloc, int(address) - int(IPv4Address("10.0.0.0")), "t", "alloc")
        lines.append(f"{name}: {reservation.ip4} p50 {statistics.median(times) * 1e3:.3f} ms max {max(times) * 1e3:.3f} ms")
    print("\n/9 dynamic reservation, lastIp at pool start:\n" + "\n".join(lines))


@pytest.mark.parametrize("nbytes", [1, 2, 3, 4, 5, 30, 32, 33, 300])
def test_write_bit_everywhere(nbytes: int) -> None:
    rng = random.Random(nbytes)
    blob = bytearray(rng.randbytes(nbytes))
    text = base64.b64encode(bytes(blob)).decode()
    for index in range(nbytes * 8):
        value = rng.random() < 0.5
        text = ipam._write_bit(text, index, value, "t", "alloc")
        if value:
            blob[index // 8] |= 0x80 >> (index % 8)
        else:
            blob[index // 8] &= 0xFF ^ (0x80 >> (index % 8))
        assert ipam._test_bit(text, index, "t", "alloc") == value
    assert text == base64.b64encode(bytes(blob)).decode()
