"""``python -m tus_filter``: see :mod:`tus_filter.cli`."""

import sys

from .cli import main

sys.exit(main())
