"""Entry point of `python -m core` (the same as the installed `flr` command)."""

import sys

from core.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
