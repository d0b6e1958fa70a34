# Stubs for pyroute2.iproute (pyroute2 0.9.7), Linux only.
from pyroute2.iproute.linux import AsyncIPRoute as AsyncIPRoute, IPRoute as IPRoute
