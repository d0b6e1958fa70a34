# Stubs for pyroute2.netlink.exceptions (pyroute2 0.9.7).
# NetlinkError is also importable as `pyroute2.NetlinkError`.

class NetlinkError(Exception):
    """A netlink error.  `code` is the positive errno (e.g. errno.EEXIST,
    errno.ENODEV); `args` is `(code, message)`."""

    code: int
    extra_code: int
    def __init__(self, code: int, msg: str | None = None) -> None: ...

class NetlinkDecodeError(Exception):
    exception: Exception
    def __init__(self, exception: Exception) -> None: ...

class NetlinkHeaderDecodeError(NetlinkDecodeError): ...
class NetlinkDataDecodeError(NetlinkDecodeError): ...
class NetlinkNLADecodeError(NetlinkDecodeError): ...
class IPSetError(NetlinkError): ...

class NetlinkDumpInterrupted(NetlinkError):
    """Raised when a dump was interrupted (NLM_F_DUMP_INTR); retry it."""

    def __init__(self, code: int = -1, msg: str = "dump interrupted") -> None: ...
