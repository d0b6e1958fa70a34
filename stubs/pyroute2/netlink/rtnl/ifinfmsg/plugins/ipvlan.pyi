# Stubs for pyroute2.netlink.rtnl.ifinfmsg.plugins.ipvlan (pyroute2 0.9.7).
#
# How to set the ipvlan mode in pyroute2 0.9.7
# --------------------------------------------
# IFLA_IPVLAN_MODE is a plain uint16 NLA, so the mode must be an *int*
# (a string such as 'l2' or 'IPVLAN_MODE_L2' fails with struct.error):
#
#     ipr.link('add', ifname='ipvl0', kind='ipvlan', link=parent_index,
#              ipvlan_mode=0)          # 0 = L2, 1 = L3, 2 = L3S (kernel values)
#
# `mode=0` is an accepted alias (the link request filter maps a bare
# `mode` keyword to IFLA_<KIND>_MODE).  pyroute2 defines no IPVLAN_MODE_*
# module constants; the only names are in `ipvlan.modes` below
# ('IPVLAN_MODE_L2' <-> 0, 'IPVLAN_MODE_L3' <-> 1; there is no L3S entry).
# IFLA_IPVLAN_FLAGS (bridge/private/vepa) is NOT in the plugin's nla_map:
# `ipvlan_flags=...` is silently dropped.  Read the mode back with
# `msg.get(('linkinfo', 'data', 'ipvlan_mode'))`.
from typing import ClassVar

from pyroute2.netlink import nla

class ipvlan(nla):
    prefix: ClassVar[str]
    # {0: 'IPVLAN_MODE_L2', 1: 'IPVLAN_MODE_L3',
    #  'IPVLAN_MODE_L2': 0, 'IPVLAN_MODE_L3': 1}
    modes: ClassVar[dict[int | str, int | str]]
