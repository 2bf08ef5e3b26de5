"""``python -m inferops``: the same as the ``inferops`` command."""

import sys

from inferops.cli import main

sys.exit(main())
