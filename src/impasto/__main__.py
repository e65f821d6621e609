"""``python -m impasto``: the same as the ``impasto`` command."""

import sys

from .cli import main

sys.exit(main())
