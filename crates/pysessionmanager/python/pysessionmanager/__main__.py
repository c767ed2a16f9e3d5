"""`python -m pysessionmanager`: the `pysessionmanager` command (see `cli`)."""

import sys

from pysessionmanager.cli import main

sys.exit(main())
