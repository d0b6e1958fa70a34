"""`python -m danm`: the same dispatcher as the `danm` console script."""

import sys

from danm.entry import main

sys.exit(main())
