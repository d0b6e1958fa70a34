# Stubs for pyroute2.netns (pyroute2 0.9.7): named network namespaces.
#
# A `netns` argument is a name (resolved under /var/run/netns) or, when it
# contains a '/', a path such as '/var/run/netns/foo' or '/proc/<pid>/ns/net'.
# Most functions also accept an open fd.  `flags` follow open(2):
#   os.O_CREAT           create the netns if missing (the default of setns()
#                        and of IPRoute()/AsyncIPRoute()!)
#   os.O_CREAT|O_EXCL    create, fail with EEXIST if it exists
#   0                    must already exist (FileNotFoundError otherwise)
# Everything except listnetns/ns_pids/pid_to_ns is wrapped by a
# mock decorator, so the runtime signatures are (*argv, **kwarg).
import socket
from ctypes import CDLL

NETNS_RUN_DIR: str
CLONE_NEWNET: int
MNT_DETACH: int
MS_BIND: int
MS_REC: int
MS_SHARED: int

def listnetns(nspath: str | None = None) -> list[str]: ...
def ns_pids(nspath: str = "/var/run/netns") -> dict[str, list[int]]: ...
def pid_to_ns(pid: int = 1, nspath: str = "/var/run/netns") -> str | None: ...

# create() forks a child that unshares and bind-mounts /var/run/netns/<name>
# (raises OSError if it already exists).
def create(netns: str, libc: CDLL | None = None) -> None: ...
def attach(netns: str, pid: int, libc: CDLL | None = None) -> None: ...

# Unmounts and unlinks; the namespace itself dies with its last user.
def remove(netns: str, libc: CDLL | None = None) -> None: ...
def getnsfd(netns: str | int, flags: int = 0, libc: CDLL | None = None, fork: bool = True) -> int: ...

# setns()/pushns()/popns() switch the netns of the *calling thread*.
def setns(netns: str | int, flags: int = ..., libc: CDLL | None = None, fork: bool = True) -> None: ...
def pushns(newns: str | int | None = None, libc: CDLL | None = None) -> None: ...
def popns(libc: CDLL | None = None) -> None: ...
def dropns(libc: CDLL | None = None) -> None: ...
def create_socket(
    netns: str | None = None,
    family: int = ...,
    socket_type: int = ...,
    proto: int = 0,
    fileno: int | None = None,
    flags: int = ...,
    libc: CDLL | None = None,
    timeout: int = ...,
) -> socket.socket: ...
