"""`python -m tracker` is the `odnos` command."""

import sys

from tracker.cli import main

sys.exit(main())
