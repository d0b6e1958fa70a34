# Stubs for pyroute2.netlink.rtnl.ifinfmsg.plugins (pyroute2 0.9.7):
# IFLA_INFO_DATA decoders per link kind.  Only `ipvlan` is stubbed.
