"""The `danm` binary's first decision: which role to play.

Container runtimes exec CNI plugins with no arguments and ``CNI_COMMAND`` in the environment, and
they do so for every pod sandbox, so this module decides the role from the program name and the
environment before anything slow is imported. Only the human-facing command line loads typer.

- invoked as ``fakeipam`` (a symlink or copy): the fakeipam IPAM plugin. The name wins over
  ``CNI_COMMAND``, because delegates exec fakeipam with ``CNI_COMMAND`` set;
- ``CNI_COMMAND`` set and no arguments, or ``danm cni``: the CNI meta-plugin;
- anything else: the command line (``danm.cli``).
"""

from __future__ import annotations

import os
import sys

# typing costs milliseconds; this module runs for every CNI call and needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

FAKEIPAM_NAME = "fakeipam"


def exit_now(status: int) -> NoReturn:
    """End a CNI process the way a Go plugin ends: the answer is written, so the interpreter's
    teardown (module and object finalisation, ~14 ms) buys nothing. Logs are written with
    os.write; stdout and stderr are flushed here."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def main() -> int:
    args = sys.argv[1:]
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    if program == FAKEIPAM_NAME or args == [FAKEIPAM_NAME]:
        from danm import fakeipam

        exit_now(fakeipam.main())
    if (not args and "CNI_COMMAND" in os.environ) or args == ["cni"]:
        from danm import cni

        exit_now(cni.main())
    from danm import cli

    return cli.run(args)
