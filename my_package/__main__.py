"""``python -m my_package``: see cli.py."""

import sys

from my_package.cli import main

sys.exit(main())
