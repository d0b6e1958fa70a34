# Stubs for pyroute2.netlink.rtnl.ifinfmsg (pyroute2 0.9.7): link messages.
#
# Link kinds and their kind-specific keyword arguments for
# `IPRoute.link('add', kind=..., ...)` come from `ifinfmsg.ifinfo.data_map`
# (kind name -> NLA class); a keyword is accepted when it is the lower-case
# NLA name without the 'IFLA_' prefix, e.g. for kind='ipvlan' the NLA
# IFLA_IPVLAN_MODE is passed as `ipvlan_mode=<int>` (see plugins/ipvlan.pyi),
# for kind='vlan' `vlan_id=<int>`, for kind='vxlan' `vxlan_id=<int>`,
# `vxlan_link=<index>`, `vxlan_port=<int>`, for kind='macvlan'
# `macvlan_mode='bridge'` (a string: IFLA_MACVLAN_MODE has a value map
# none/private/vepa/bridge/passthru/source), and for kind='veth'
# `peer='name'` or `peer={'ifname': 'name', 'net_ns_fd': 'ns'}`.
# Unknown keywords are silently dropped, not rejected.
from typing import ClassVar, Literal, TypeVar, overload

from pyroute2.netlink import nla, nlmsg

_T = TypeVar("_T")

RTM_NEWLINK: int
RTM_DELLINK: int

IFF_UP: int
IFF_BROADCAST: int
IFF_DEBUG: int
IFF_LOOPBACK: int
IFF_POINTOPOINT: int
IFF_NOTRAILERS: int
IFF_RUNNING: int
IFF_NOARP: int
IFF_PROMISC: int
IFF_ALLMULTI: int
IFF_MASTER: int
IFF_SLAVE: int
IFF_MULTICAST: int
IFF_PORTSEL: int
IFF_AUTOMEDIA: int
IFF_DYNAMIC: int
IFF_LOWER_UP: int
IFF_DORMANT: int
IFF_ECHO: int
IFF_MASK: int
IFF_VOLATILE: int

# struct ifinfomsg fields: always present on a decoded message.
_IntField = Literal["family", "ifi_type", "index", "flags", "change"]
# NLAs with string values ('address'/'broadcast' are "xx:xx:.." MACs,
# 'operstate' is e.g. 'UP', 'DOWN', 'UNKNOWN').
_StrNla = Literal[
    "ifname",
    "address",
    "broadcast",
    "qdisc",
    "ifalias",
    "operstate",
    "alt_ifname",
    "phys_port_name",
    "parent_dev_name",
    "parent_dev_bus_name",
]
# NLAs with integer values.
_IntNla = Literal[
    "mtu",
    "min_mtu",
    "max_mtu",
    "link",
    "master",
    "txqlen",
    "linkmode",
    "net_ns_pid",
    "num_vf",
    "group",
    "ext_mask",
    "promiscuity",
    "num_tx_queues",
    "num_rx_queues",
    "carrier",
    "carrier_changes",
    "carrier_up_count",
    "carrier_down_count",
    "link_netnsid",
    "proto_down",
    "gso_max_segs",
    "gso_max_size",
    "gro_max_size",
    "tso_max_size",
    "tso_max_segs",
    "new_ifindex",
    "if_netnsid",
    "allmulti",
]

class ifinfbase:
    @staticmethod
    def flags2names(flags: int, mask: int = 0xFFFFFFFF) -> list[str]: ...
    @staticmethod
    def names2flags(flags: list[str]) -> tuple[int, int]: ...

    class ifinfo(nla):
        """IFLA_LINKINFO.  `data_map` maps a link kind ('veth', 'bridge',
        'macvlan', 'vlan', 'vxlan', 'ipvlan', ...) to the class decoding
        its IFLA_INFO_DATA."""

        data_map: ClassVar[dict[str, type[nla]]]
        @classmethod
        def list_link_kind(cls) -> dict[str, type[nla]]: ...

class ifinfmsg(ifinfbase, nlmsg):
    """A link (RTM_NEWLINK) message.

    `msg.get('state')` / `msg['state']` is 'up' or 'down' (derived from
    IFF_UP when the message is decoded).  Nested NLAs are reached with tuple
    keys: `msg.get(('linkinfo', 'kind'))` is the link kind ('veth', ...),
    `msg.get(('linkinfo', 'data', 'ipvlan_mode'))` a kind-specific value.
    """

    @overload  # type: ignore[override]  # see nlmsg_base.get
    def get(self, key: _IntField, default: object = None) -> int: ...
    @overload
    def get(self, key: _StrNla | Literal["state"], default: None = None) -> str | None: ...
    @overload
    def get(self, key: _StrNla | Literal["state"], default: _T) -> str | _T: ...
    @overload
    def get(self, key: _IntNla, default: None = None) -> int | None: ...
    @overload
    def get(self, key: _IntNla, default: _T) -> int | _T: ...
    @overload
    def get(
        self, key: tuple[Literal["linkinfo"], Literal["kind"]], default: None = None
    ) -> str | None: ...
    @overload
    def get(self, key: str | tuple[str, ...], default: object = None) -> object: ...
    @overload
    def __getitem__(self, key: _IntField) -> int: ...
    @overload
    def __getitem__(self, key: Literal["state", "event"]) -> str: ...
    @overload
    def __getitem__(self, key: Literal["header"]) -> dict[str, object]: ...
    @overload
    def __getitem__(self, key: str) -> object: ...
