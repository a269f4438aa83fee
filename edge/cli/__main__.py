"""`python -m edge.cli`: the same as the `seatbox` command."""

import sys

from edge.cli import main

sys.exit(main())
