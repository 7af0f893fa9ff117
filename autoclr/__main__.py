"""``python -m autoclr``: the command line (see ``autoclr --help``)."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
