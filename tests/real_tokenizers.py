"""The real chat models' tokenizers in `shared/tokenizers/` (no weights), for tests of real templates.

`shared/` sits next to the checkout (or in it); each folder with a `tokenizer_config.json` is one
model's tokenizer, its `tokenizer.json` possibly stored gzipped.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
TOKENIZERS = next((p for p in (_ROOT / "shared" / "tokenizers", _ROOT.parent / "shared" / "tokenizers",
                               _ROOT.parent.parent / "shared" / "tokenizers") if p.is_dir()),
                  _ROOT / "shared" / "tokenizers")
FOLDERS = sorted(p.name for p in TOKENIZERS.iterdir() if (p / "tokenizer_config.json").is_file()) \
    if TOKENIZERS.is_dir() else []


def copy_tokenizer(name: str, folder: Path) -> Path:
    """`name`'s tokenizer files copied into `folder`, `tokenizer.json.gz` unpacked, so that
    `AutoTokenizer.from_pretrained(folder)` loads it."""
    for item in (TOKENIZERS / name).iterdir():
        if item.name == "tokenizer.json.gz":
            with gzip.open(item) as packed, open(folder / "tokenizer.json", "wb") as out:
                shutil.copyfileobj(packed, out)
        elif item.is_file():
            shutil.copy(item, folder / item.name)
    return folder
