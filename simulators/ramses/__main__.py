"""`python -m simulators.ramses {info,grid,project} ...`: see simulators/ramses/cli.py."""

import sys

from simulators.ramses.cli import main

sys.exit(main())
