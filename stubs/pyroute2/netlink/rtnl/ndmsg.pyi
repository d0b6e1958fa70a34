# Stubs for pyroute2.netlink.rtnl.ndmsg (pyroute2 0.9.7): neighbour messages.
from typing import ClassVar, Literal, TypeVar, overload

from pyroute2.netlink import nlmsg

_T = TypeVar("_T")

NTF_USE: int
NTF_SELF: int
NTF_MASTER: int
NTF_PROXY: int
NTF_EXT_LEARNED: int
NTF_OFFLOADED: int
NTF_STICKY: int
NTF_ROUTER: int

NUD_INCOMPLETE: int
NUD_REACHABLE: int
NUD_STALE: int
NUD_DELAY: int
NUD_PROBE: int
NUD_FAILED: int
NUD_NOARP: int
NUD_PERMANENT: int
NUD_NONE: int

# lower-case names without prefix: states['permanent'] == NUD_PERMANENT
flags: dict[str, int]
states: dict[str, int]

def states_a2n(s: str) -> int: ...

_IntField = Literal["family", "ifindex", "state", "flags", "ndm_type"]
_StrNla = Literal["dst", "lladdr"]
_IntNla = Literal["probes", "vlan", "port", "vni", "master", "link_netnsid", "src_vni", "protocol"]

class ndmsg(nlmsg):
    """A neighbour (RTM_NEWNEIGH) message."""

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
