# Stubs for pyroute2.netlink (pyroute2 0.9.7): the netlink message base
# classes and the handful of protocol constants danm needs.
#
# Messages are `dict` subclasses at runtime.  Values are typed `object`
# unless the key is known: struct fields (e.g. 'index', 'flags', 'family')
# are always present on a decoded message and are typed `int`; NLA values
# are typed `T | None` because the kernel may omit any NLA.
from typing import ClassVar, Literal, Self, overload

# Re-exported "for compatibility" by pyroute2 itself; the canonical import
# paths are pyroute2.NetlinkError and pyroute2.netlink.exceptions.NetlinkError.
from pyroute2.netlink.exceptions import (
    NetlinkDecodeError as NetlinkDecodeError,
    NetlinkError as NetlinkError,
)

NETLINK_ROUTE: int
NETLINK_GENERIC: int

NLM_F_REQUEST: int
NLM_F_MULTI: int
NLM_F_ACK: int
NLM_F_ECHO: int
NLM_F_DUMP_INTR: int
NLM_F_ROOT: int
NLM_F_MATCH: int
NLM_F_ATOMIC: int
NLM_F_DUMP: int
NLM_F_REPLACE: int
NLM_F_EXCL: int
NLM_F_CREATE: int
NLM_F_APPEND: int

NLMSG_NOOP: int
NLMSG_ERROR: int
NLMSG_DONE: int
NLMSG_OVERRUN: int

class nlmsg_base(dict[str, object]):
    """Base of every netlink message and NLA (a `dict` subclass)."""

    prefix: ClassVar[str | None]
    def __init__(
        self,
        data: bytes | bytearray | None = None,
        offset: int = 0,
        length: int | None = None,
        parent: nlmsg_base | None = None,
        init: object = None,
    ) -> None: ...
    # `get` walks NLAs first, then struct fields; a tuple key descends
    # into nested NLAs, e.g. msg.get(('linkinfo', 'kind')).  The concrete
    # message classes overload it on Literal keys with precise value types;
    # those overloads carry `type: ignore[override]` because mypy cannot
    # match added Literal items against dict.get's own overloads, although
    # every item only narrows the key and the result.
    #
    # NB for code compiled with mypyc: because this class derives from dict,
    # mypyc compiles `msg.get(key)` into a raw dict lookup (lib-rt CPyDict_Get
    # assumes subclasses do not override get), which bypasses this method: NLAs
    # then always read as None.  In compiled modules read NLAs with
    # get_attr('IFLA_...') and struct fields with msg['field'] (subscripting a
    # subclass does go through pyroute2's __getitem__); see danm/netlink.py.
    def get(self, key: str | tuple[str, ...], default: object = None) -> object: ...
    def get_nested(self, *keys: str) -> object: ...
    # `attr` may be the full NLA name ('IFLA_IFNAME') or the short one
    # ('ifname'); the prefix is added when missing.
    def get_attr(self, attr: str, default: object = None) -> object: ...
    def get_attrs(self, attr: str) -> list[object]: ...
    def getvalue(self) -> object: ...
    def dump(self) -> object: ...
    def load(self, dump: object) -> Self: ...
    def copy(self) -> Self: ...
    @classmethod
    def nla2name(cls, name: str) -> str: ...
    @classmethod
    def name2nla(cls, name: str) -> str: ...

class nla(nlmsg_base):
    """A netlink attribute (NLA)."""

class nlmsg(nlmsg_base):
    """A netlink message.  Received messages carry `msg['header']` (a dict:
    'type', 'flags', 'sequence_number', 'pid', ...) and `msg['event']` (the
    message type name, e.g. 'RTM_NEWLINK').  The concrete message classes
    below type those keys precisely; here they are plain `object`.

    (Only leaf classes overload `__getitem__`/`get`: mypy rejects a subclass
    that adds Literal overload items to an already-overloaded method.)"""

class nlmsgerr(nlmsg):
    """The ACK/error message; `list[nlmsg]` results of add/set/del requests
    normally hold one of these with `['error'] == 0`."""

    @overload
    def __getitem__(self, key: Literal["error"]) -> int: ...
    @overload
    def __getitem__(self, key: Literal["header"]) -> dict[str, object]: ...
    @overload
    def __getitem__(self, key: Literal["event"]) -> str: ...
    @overload
    def __getitem__(self, key: str) -> object: ...
    @property
    def orig_msg(self) -> dict[str, object]: ...
    @property
    def orig_type(self) -> int: ...
