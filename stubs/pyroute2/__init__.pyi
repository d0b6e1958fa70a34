# Type stubs for the parts of pyroute2 0.9.7 that danm uses (Linux only).
#
# pyroute2 ships no type information; these stubs (found through
# `mypy_path = stubs`) cover IPRoute / AsyncIPRoute, the RTNL message
# classes, NetlinkError and pyroute2.netns.  Anything not stubbed is a
# "module has no attribute" error rather than a silent Any: extend the stubs
# (and run stubtest, see stubs/stubtest-allowlist.txt) when danm needs more.
from pyroute2 import netns as netns
from pyroute2.iproute import AsyncIPRoute as AsyncIPRoute, IPRoute as IPRoute
from pyroute2.netlink.exceptions import (
    NetlinkDecodeError as NetlinkDecodeError,
    NetlinkDumpInterrupted as NetlinkDumpInterrupted,
    NetlinkError as NetlinkError,
)

__version__: str
