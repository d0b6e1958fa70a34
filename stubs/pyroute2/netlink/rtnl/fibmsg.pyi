# Stubs for pyroute2.netlink.rtnl.fibmsg (pyroute2 0.9.7): policy rule messages.
from typing import ClassVar, Literal, TypeVar, overload

from pyroute2.netlink import nlmsg

_T = TypeVar("_T")

FR_ACT_UNSPEC: int
FR_ACT_TO_TBL: int
FR_ACT_GOTO: int
FR_ACT_NOP: int
FR_ACT_BLACKHOLE: int
FR_ACT_UNREACHABLE: int
FR_ACT_PROHIBIT: int

# struct fib_rule_hdr fields; 'table' via get() is the 32-bit FRA_TABLE NLA.
_IntField = Literal[
    "family", "dst_len", "src_len", "tos", "table", "res1", "res2", "action", "flags"
]
# 'uid_range'/'sport_range'/'dport_range' decode to 'start:end' strings.
_StrNla = Literal["dst", "src", "iifname", "oifname", "uid_range", "sport_range", "dport_range"]
# NB: the kernel omits FRA_PRIORITY for the priority-0 rule ('local'), so
# get('priority') is None there.
_IntNla = Literal[
    "priority",
    "goto",
    "fwmark",
    "fwmask",
    "flow",
    "suppress_ifgroup",
    "suppress_prefixlen",
    "l3mdev",
    "protocol",
    "ip_proto",
]

class fibmsg(nlmsg):
    """A policy routing rule (RTM_NEWRULE) message."""

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
