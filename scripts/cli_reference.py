"""Write the README's command reference from the parsers: `python scripts/cli_reference.py`.

With `--check`, write nothing and exit 1 when the README differs from what the parsers print
(what CI's test does, `tests/cli/test_reference.py`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.cli.reference import with_reference  # noqa: E402  (the checkout, not an installed copy)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when out of date")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()
    text = args.readme.read_text(encoding="utf-8")
    new = with_reference(text)
    if args.check:
        if new != text:
            print(f"{args.readme}: the command reference is out of date; run python scripts/cli_reference.py",
                  file=sys.stderr)
            return 1
        return 0
    if new != text:
        args.readme.write_text(new, encoding="utf-8")
        print(f"{args.readme}: command reference rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
