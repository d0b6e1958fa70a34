"""fakeipam: the IPAM plugin that hands addresses danm allocated to a delegated CNI plugin.

Not built yet (see the delegation issue); every verb answers with a CNI error.
"""

import sys

from danm.cni import ERR_INTERNAL, CniFailure, error_reply


def main() -> int:
    sys.stdout.buffer.write(error_reply(CniFailure(ERR_INTERNAL, "fakeipam is not implemented yet")))
    sys.stdout.buffer.flush()
    return 1
