# Stubs for pyroute2.netlink.rtnl.rtmsg (pyroute2 0.9.7): route messages.
from typing import ClassVar, Literal, TypeVar, overload

from pyroute2.netlink import nlmsg

_T = TypeVar("_T")

RTNH_F_DEAD: int
RTNH_F_PERVASIVE: int
RTNH_F_ONLINK: int
RTNH_F_OFFLOAD: int
RTNH_F_LINKDOWN: int

RT_SCOPE_UNIVERSE: int
RT_SCOPE_SITE: int
RT_SCOPE_LINK: int
RT_SCOPE_HOST: int
RT_SCOPE_NOWHERE: int

# struct rtmsg fields.  'table' via get() is the 32-bit RTA_TABLE NLA (the
# 8-bit field reads 252 for tables > 255); 'proto', 'scope', 'type' are ints.
_IntField = Literal[
    "family", "dst_len", "src_len", "tos", "table", "proto", "scope", "type", "flags"
]
# Address NLAs are strings for AF_INET/AF_INET6 routes (e.g. '10.0.0.0';
# the prefix length is the separate 'dst_len' field).  A default route has
# no 'dst'.  (AF_MPLS routes decode 'dst'/'newdst' as label lists: not
# covered here.)
_StrNla = Literal["dst", "src", "gateway", "prefsrc"]
_IntNla = Literal[
    "iif", "oif", "priority", "protoinfo", "flow", "mark", "pref", "encap_type"
]

class rtmsg(nlmsg):
    """A route (RTM_NEWROUTE) message.  Multipath next hops are under
    'multipath' and metrics under 'metrics' (both typed `object`)."""

    prefix: ClassVar[str]
    @overload  # type: ignore[override]  # see nlmsg_base.get
    def get(self, key: _IntField, default: object = None) -> int: ...
    @overload
    def get(self, key: _StrNla, default: None = None) -> str | None: ...
    @overload
    def get(self, key: _StrNla, default: _T) -> str | _T: ...
    @overload
    def get(self, key: _IntNla, default: None = None) -> int | None: ...
    @overload
    def get(self, key: _IntNla, default: _T) -> int | _T: ...
    @overload
    def get(self, key: str | tuple[str, ...], default: object = None) -> object: ...
    @overload
    def __getitem__(self, key: _IntField) -> int: ...
    @overload
    def __getitem__(self, key: Literal["event"]) -> str: ...
    @overload
    def __getitem__(self, key: Literal["header"]) -> dict[str, object]: ...
    @overload
    def __getitem__(self, key: str) -> object: ...
