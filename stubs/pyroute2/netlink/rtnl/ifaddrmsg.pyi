# Stubs for pyroute2.netlink.rtnl.ifaddrmsg (pyroute2 0.9.7): address messages.
#
# IFA_F_NODAD lives here (pyroute2.netlink.rtnl.ifaddrmsg.IFA_F_NODAD == 0x02).
# Pass address flags as `flags=` to IPRoute.addr('add'|'replace', ...): the
# request filter sends them as the 32-bit IFA_FLAGS NLA, e.g.
#
#     ipr.addr('add', index=i, address='fd00::1', prefixlen=64,
#              flags=IFA_F_NODAD)
#
# Read them back with `msg.get('flags')`, which prefers the 32-bit IFA_FLAGS
# NLA over the 8-bit `msg['flags']` struct field.
from typing import ClassVar, Literal, TypeVar, overload

from pyroute2.netlink import nlmsg

_T = TypeVar("_T")

IFA_F_SECONDARY: int
IFA_F_TEMPORARY: int
IFA_F_NODAD: int
IFA_F_OPTIMISTIC: int
IFA_F_DADFAILED: int
IFA_F_HOMEADDRESS: int
IFA_F_DEPRECATED: int
IFA_F_TENTATIVE: int
IFA_F_PERMANENT: int
IFA_F_MANAGETEMPADDR: int
IFA_F_NOPREFIXROUTE: int
IFA_F_MCAUTOJOIN: int
IFA_F_STABLE_PRIVACY: int
IFA_F_NAMES: dict[str, int]
IFA_F_VALUES: dict[int, str]
IFA_F_VALUES6: dict[int, str]

# struct ifaddrmsg fields ('flags' via get() is the IFA_FLAGS NLA when present).
_IntField = Literal["family", "prefixlen", "flags", "scope", "index"]
_StrNla = Literal["address", "local", "label", "broadcast", "anycast", "multicast"]
_IntNla = Literal["rt_priority", "proto"]

class ifaddrmsg(nlmsg):
    """An address (RTM_NEWADDR) message.  'address'/'local' are strings
    like '10.0.0.1' or 'fd00::1' (IPv6 in compressed form)."""

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
    @staticmethod
    def flags2names(flags: int, family: int = ...) -> list[str]: ...
    @staticmethod
    def names2flags(flags: list[str]) -> int: ...
