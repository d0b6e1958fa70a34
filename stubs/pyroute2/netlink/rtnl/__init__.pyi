# Stubs for pyroute2.netlink.rtnl (pyroute2 0.9.7): RTNL constants.
# RTMGRP_* are the multicast group bitmasks for IPRoute(groups=...) /
# bind(groups=...); RTM_* are message types (msg['header']['type']).
IFNAMSIZ: int
ALTIFNAMSIZ: int

RTMGRP_NONE: int
RTMGRP_LINK: int
RTMGRP_NOTIFY: int
RTMGRP_NEIGH: int
RTMGRP_TC: int
RTMGRP_IPV4_IFADDR: int
RTMGRP_IPV4_MROUTE: int
RTMGRP_IPV4_ROUTE: int
RTMGRP_IPV4_RULE: int
RTMGRP_IPV6_IFADDR: int
RTMGRP_IPV6_MROUTE: int
RTMGRP_IPV6_ROUTE: int
RTMGRP_IPV6_IFINFO: int
RTMGRP_IPV6_PREFIX: int
RTMGRP_IPV6_RULE: int
RTMGRP_MPLS_ROUTE: int
RTMGRP_DEFAULTS: int

RTM_NEWLINK: int
RTM_DELLINK: int
RTM_GETLINK: int
RTM_SETLINK: int
RTM_NEWADDR: int
RTM_DELADDR: int
RTM_GETADDR: int
RTM_NEWROUTE: int
RTM_DELROUTE: int
RTM_GETROUTE: int
RTM_NEWNEIGH: int
RTM_DELNEIGH: int
RTM_GETNEIGH: int
RTM_NEWRULE: int
RTM_DELRULE: int
RTM_GETRULE: int
RTM_NEWNSID: int
RTM_DELNSID: int
RTM_GETNSID: int
RTM_NEWNETNS: int
RTM_DELNETNS: int

# name <-> number maps, both directions in one dict:
# rt_scope['link'] == 253 and rt_scope[253] == 'link'.
rt_type: dict[str | int, int | str]
rt_proto: dict[str | int, int | str]
rt_scope: dict[str | int, int | str]
