# Stubs for pyroute2.iproute.linux (pyroute2 0.9.7): IPRoute / AsyncIPRoute.
#
# Return types (verified against the 0.9.7 sources and at runtime):
#
#   AsyncIPRoute (the real implementation, RTNL_API on an asyncio socket):
#     await ipr.<obj>('dump'|'show')  -> AsyncGenerator of messages (lazy)
#     await ipr.get_links()/get_addr()/get_routes()/get_rules()/...
#                                     -> AsyncGenerator of messages
#     await ipr.<obj>('get', ...)     -> list of messages
#     await ipr.<obj>('add'|'set'|'del'|'replace'|...) -> list[nlmsg], in
#                                        practice one nlmsgerr ACK ['error'] == 0
#     await ipr.link_lookup(...)      -> list[int]
#   IPRoute (sync wrapper; methods resolved through __getattr__ on an
#   internal AsyncIPRoute and run on a private event loop):
#     ipr.<obj>('dump'|'show') and every get_*() dump -> tuple of messages
#     (a generator only if the global pyroute2.config.nlm_generator is set
#     to True -- danm must not do that), everything else as above but
#     synchronous.
#
# Errors are raised as pyroute2.NetlinkError (`.code` is the errno).
#
# Commands: link has no 'replace'/'show'; rule has no 'replace' ('set' is a
# no-op returning []); addr 'get'/'set' are no-ops returning None and are
# left out here.
#
# Keyword arguments are forwarded to pyroute2's request filters and become
# message fields/NLAs (e.g. ifname=, index=, kind=, state='up'|'down', mtu=,
# address=, ifalias=, net_ns_fd=<netns name|path|fd>, prefixlen=, dst=
# '10.0.0.0/24', gateway=, oif=, table=, priority=, src=, ...); on 'dump'
# they act as a filter, as does `match=` (a callable or a dict).  They are
# typed `object`: pyroute2 accepts open-ended NLA names.
#
# `family` defaults to socket.AF_UNSPEC (all families) unless noted.
#
# netns / flags: IPRoute(netns='name' | '/path/to/ns', flags=...) opens the
# netlink socket inside that netns (via a forked helper).  The default
# flags=os.O_CREAT *creates* a missing netns; pass flags=0 to require an
# existing one (FileNotFoundError otherwise -- raised by IPRoute() itself,
# but only on the first request for AsyncIPRoute).
import asyncio
import socket
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable, Mapping
from ctypes import CDLL
from types import TracebackType
from typing import Literal, Self, TypeAlias, TypeVar, overload

from pyroute2.netlink import nlmsg
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

_M = TypeVar("_M", bound=nlmsg)

DEFAULT_TABLE: int

_Dump: TypeAlias = Literal["dump"]
_RouteDump: TypeAlias = Literal["dump", "show"]
_LinkChange: TypeAlias = Literal[
    "add", "set", "update", "del", "remove", "delete", "property_add", "property_del"
]
_AddrChange: TypeAlias = Literal["add", "replace", "del", "remove", "delete"]
_RouteChange: TypeAlias = Literal[
    "add", "set", "replace", "change", "append", "del", "remove", "delete"
]
_RuleChange: TypeAlias = Literal["add", "del", "remove", "delete", "set"]
_NeighChange: TypeAlias = Literal[
    "add", "set", "replace", "change", "append", "del", "remove", "delete"
]

# `match=` for dumps: a predicate called with each message, or a dict of
# {key: value-or-predicate}.  (`| None` lives inside the aliases on purpose:
# with `_LinkMatch | None` mypy 2.4 fails to infer a lambda's parameter type
# from the context and silently makes it Any.)
_LinkMatch: TypeAlias = Callable[[ifinfmsg], object] | Mapping[str, object] | None
_AddrMatch: TypeAlias = Callable[[ifaddrmsg], object] | Mapping[str, object] | None
_RouteMatch: TypeAlias = Callable[[rtmsg], object] | Mapping[str, object] | None
_RuleMatch: TypeAlias = Callable[[fibmsg], object] | Mapping[str, object] | None
_NeighMatch: TypeAlias = Callable[[ndmsg], object] | Mapping[str, object] | None
_ExceptionFactory: TypeAlias = Callable[[Exception, nlmsg], BaseException]

class AsyncIPRoute:
    """Asynchronous RTNL API.  Use as `async with AsyncIPRoute(...) as ipr:`
    (exit calls close()), or call close() explicitly."""

    # Socket status/spec (e.g. status['netns'] when a netns was given).
    status: dict[str, object]
    def __init__(
        self,
        port: int | None = None,
        pid: int | None = None,
        fileno: int | None = None,
        sndbuf: int = 1048576,
        rcvbuf: int = 1048576,
        rcvsize: int = 16384,
        all_ns: bool = False,
        async_qsize: int | None = None,
        nlm_generator: bool | None = None,
        target: str = "localhost",
        ext_ack: bool = False,
        strict_check: bool = False,
        groups: int = ...,
        nlm_echo: bool = False,
        netns: str | None = None,
        netns_path: list[str] | None = None,
        flags: int = ...,
        libc: CDLL | None = None,
        use_socket: socket.socket | None = None,
        use_event_loop: asyncio.AbstractEventLoop | None = None,
        telemetry: tuple[str, int] | None = None,
        exception_factory: _ExceptionFactory | None = None,
    ) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def close(self, code: int = ...) -> None: ...
    # Monitoring: bind to RTMGRP_* groups, then iterate get().
    async def bind(self, groups: int | None = None, *, pid: int | None = None) -> None: ...
    def get(
        self,
        msg_seq: int = 0,
        terminate: Callable[[nlmsg], object] | None = None,
        callback: Callable[[nlmsg], object] | None = None,
        noraise: bool = False,
        exception_factory: _ExceptionFactory | None = None,
    ) -> AsyncGenerator[nlmsg, None]: ...
    # -- links --------------------------------------------------------
    @overload
    async def link(self, command: _Dump, **kwargs: object) -> AsyncGenerator[ifinfmsg, None]: ...
    @overload
    async def link(self, command: Literal["get"], **kwargs: object) -> list[ifinfmsg]: ...
    @overload
    async def link(self, command: _LinkChange, **kwargs: object) -> list[nlmsg]: ...
    # Shortcut: link_lookup(ifname=...) / (index=...) / (altname=...) sends
    # one 'get' and returns [] instead of raising when the link is missing;
    # any other filter dumps all links and filters in userspace.
    async def link_lookup(self, match: _LinkMatch = None, **kwargs: object) -> list[int]: ...
    # get_links() / get_links('all') dump all links, get_links(1, 2) get those.
    async def get_links(self, *argv: int | str, **kwargs: object) -> AsyncGenerator[ifinfmsg, None]: ...
    # -- addresses ----------------------------------------------------
    @overload
    async def addr(self, command: _Dump, **kwargs: object) -> AsyncGenerator[ifaddrmsg, None]: ...
    @overload
    async def addr(self, command: _AddrChange, **kwargs: object) -> list[nlmsg]: ...
    async def get_addr(
        self, family: int = ..., match: _AddrMatch = None, **kwargs: object
    ) -> AsyncGenerator[ifaddrmsg, None]: ...
    async def flush_addr(self, *argv: object, **kwargs: object) -> list[nlmsg]: ...
    # -- routes -------------------------------------------------------
    @overload
    async def route(self, command: _RouteDump, **kwargs: object) -> AsyncGenerator[rtmsg, None]: ...
    @overload
    async def route(self, command: Literal["get"], **kwargs: object) -> list[rtmsg]: ...
    @overload
    async def route(self, command: _RouteChange, **kwargs: object) -> list[nlmsg]: ...
    # family=255 (the default) dumps all families; table=<n> filters.
    async def get_routes(
        self, family: int = 255, match: _RouteMatch = None, **kwargs: object
    ) -> AsyncGenerator[rtmsg, None]: ...
    async def get_default_routes(
        self, family: int = ..., table: int | None = 254
    ) -> AsyncGenerator[rtmsg, None]: ...
    async def flush_routes(self, *argv: object, **kwargs: object) -> list[nlmsg]: ...
    # -- policy rules -------------------------------------------------
    @overload
    async def rule(self, command: _Dump, **kwargs: object) -> AsyncGenerator[fibmsg, None]: ...
    @overload
    async def rule(self, command: _RuleChange, **kwargs: object) -> list[nlmsg]: ...
    async def get_rules(
        self, family: int = ..., match: _RuleMatch = None, **kwargs: object
    ) -> AsyncGenerator[fibmsg, None]: ...
    # NB: without filters this deletes *all* rules of all families.
    async def flush_rules(self, *argv: object, **kwargs: object) -> list[nlmsg]: ...
    # -- neighbours ---------------------------------------------------
    @overload
    async def neigh(self, command: _Dump, **kwargs: object) -> AsyncGenerator[ndmsg, None]: ...
    @overload
    async def neigh(self, command: Literal["get"], **kwargs: object) -> list[ndmsg]: ...
    @overload
    async def neigh(self, command: _NeighChange, **kwargs: object) -> list[nlmsg]: ...
    async def get_neighbours(
        self, family: int = ..., match: _NeighMatch = None, **kwargs: object
    ) -> AsyncGenerator[ndmsg, None]: ...
    # -- waiting ------------------------------------------------------
    # Re-run `method(command, **spec)` every `interval` s until the result
    # is non-empty (present=True) or empty (present=False); returns it as a
    # list.  Raises TimeoutError after `timeout` s.
    async def poll(
        self,
        method: Callable[..., Awaitable[AsyncIterable[_M] | list[_M]]],
        command: Literal["dump", "get", "show"],
        present: bool = True,
        timeout: float = 10,
        interval: float = 0.2,
        **spec: object,
    ) -> list[_M]: ...

class IPRoute:
    """Synchronous RTNL API (wraps an AsyncIPRoute in `self.asyncore`).
    Use as `with IPRoute(...) as ipr:` (exit calls close())."""

    asyncore: AsyncIPRoute
    status: dict[str, object]
    def __init__(
        self,
        port: int | None = None,
        pid: int | None = None,
        fileno: int | None = None,
        sndbuf: int = 1048576,
        rcvbuf: int = 1048576,
        rcvsize: int = 16384,
        all_ns: bool = False,
        async_qsize: int | None = None,
        nlm_generator: bool | None = None,
        target: str = "localhost",
        ext_ack: bool = False,
        strict_check: bool = False,
        groups: int = ...,
        nlm_echo: bool = False,
        netns: str | None = None,
        flags: int = ...,
        libc: CDLL | None = None,
        use_socket: socket.socket | None = None,
        use_event_loop: asyncio.AbstractEventLoop | None = None,
        telemetry: tuple[str, int] | None = None,
    ) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...
    def close(self, code: int = ...) -> None: ...
    # Monitoring: bind to RTMGRP_* groups, then call get() (blocks until the
    # next batch of messages arrives).
    def bind(self, groups: int | None = None, *, pid: int | None = None) -> None: ...
    def get(
        self,
        msg_seq: int = 0,
        terminate: Callable[[nlmsg], object] | None = None,
        callback: Callable[[nlmsg], object] | None = None,
        noraise: bool = False,
    ) -> list[nlmsg]: ...
    # -- links --------------------------------------------------------
    @overload
    def link(self, command: _Dump, **kwargs: object) -> tuple[ifinfmsg, ...]: ...
    @overload
    def link(self, command: Literal["get"], **kwargs: object) -> list[ifinfmsg]: ...
    @overload
    def link(self, command: _LinkChange, **kwargs: object) -> list[nlmsg]: ...
    def link_lookup(self, match: _LinkMatch = None, **kwargs: object) -> list[int]: ...
    def get_links(self, *argv: int | str, **kwargs: object) -> tuple[ifinfmsg, ...]: ...
    # -- addresses ----------------------------------------------------
    @overload
    def addr(self, command: _Dump, **kwargs: object) -> tuple[ifaddrmsg, ...]: ...
    @overload
    def addr(self, command: _AddrChange, **kwargs: object) -> list[nlmsg]: ...
    def get_addr(
        self, family: int = ..., match: _AddrMatch = None, **kwargs: object
    ) -> tuple[ifaddrmsg, ...]: ...
    def flush_addr(self, *argv: object, **kwargs: object) -> list[nlmsg]: ...
    # -- routes -------------------------------------------------------
    @overload
    def route(self, command: _RouteDump, **kwargs: object) -> tuple[rtmsg, ...]: ...
    @overload
    def route(self, command: Literal["get"], **kwargs: object) -> list[rtmsg]: ...
    @overload
    def route(self, command: _RouteChange, **kwargs: object) -> list[nlmsg]: ...
    def get_routes(
        self, family: int = 255, match: _RouteMatch = None, **kwargs: object
    ) -> tuple[rtmsg, ...]: ...
    def get_default_routes(self, family: int = ..., table: int | None = 254) -> tuple[rtmsg, ...]: ...
    def flush_routes(self, *argv: object, **kwargs: object) -> list[nlmsg]: ...
    # -- policy rules -------------------------------------------------
    @overload
    def rule(self, command: _Dump, **kwargs: object) -> tuple[fibmsg, ...]: ...
    @overload
    def rule(self, command: _RuleChange, **kwargs: object) -> list[nlmsg]: ...
    def get_rules(
        self, family: int = ..., match: _RuleMatch = None, **kwargs: object
    ) -> tuple[fibmsg, ...]: ...
    def flush_rules(self, *argv: object, **kwargs: object) -> list[nlmsg]: ...
    # -- neighbours ---------------------------------------------------
    @overload
    def neigh(self, command: _Dump, **kwargs: object) -> tuple[ndmsg, ...]: ...
    @overload
    def neigh(self, command: Literal["get"], **kwargs: object) -> list[ndmsg]: ...
    @overload
    def neigh(self, command: _NeighChange, **kwargs: object) -> list[nlmsg]: ...
    def get_neighbours(
        self, family: int = ..., match: _NeighMatch = None, **kwargs: object
    ) -> tuple[ndmsg, ...]: ...
    # -- waiting ------------------------------------------------------
    # Re-run `method(command, **spec)` until it returns something non-empty;
    # raises TimeoutError after `timeout` s.  (No `present=` here, unlike
    # AsyncIPRoute.poll.)
    def poll(
        self,
        method: Callable[..., Iterable[_M]],
        command: Literal["dump", "get", "show"],
        timeout: float = 10,
        interval: float = 0.2,
        **spec: object,
    ) -> list[_M]: ...
