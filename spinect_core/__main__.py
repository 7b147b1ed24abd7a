"""``python -m spinect_core`` runs the CLI."""

import sys

from spinect_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
