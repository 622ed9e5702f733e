"""Benchmarks by name: a dataset of the Hugging Face Hub (or a local dataset folder, or an
`hf://` file) read through the `datasets` library and handed on as a Parquet file, so that it is
detected and evaluated like any other file (`core.evaluation.detect`).

`dataset_file("allenai/reward-bench", "filtered")` loads the split (from `datasets`' own cache
when it was downloaded before), writes it once to `<cache_dir()>/datasets/`, and returns that
file; its name carries the dataset's and split's names, which become the benchmark's name.

Shortcut taken on purpose: a split is materialised whole (RewardBench's 3k rows are a few MB);
`--limit` applies afterwards, like for files.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from core.errors import InputError
from core.locations import cache_dir

OFFLINE_HINT = ("without network access a dataset must already be in the datasets cache "
                "(~/.cache/huggingface/datasets, or HF_DATASETS_CACHE; set HF_HUB_OFFLINE=1 to "
                "use that copy), or give its files (Parquet, JSONL) as paths instead")


def dataset_file(name: str, split: str | None = None, *, folder: Path | None = None,
                 datasets_cache: str | Path | None = None) -> Path:
    """The split `split` of dataset `name` as a Parquet file (written under `folder`, default
    `<cache_dir()>/datasets`). `name` is a Hub id, a local dataset folder or an `hf://` path."""
    try:
        import datasets
    except ImportError:
        raise InputError("reading a dataset by name needs the 'datasets' package: "
                         "pip install datasets") from None
    name = name.strip()
    if not name:
        raise InputError("--dataset needs a name, e.g. allenai/reward-bench")
    kwargs = {"cache_dir": str(datasets_cache)} if datasets_cache else {}
    try:
        if name.startswith("hf://") or Path(name).suffix in (".parquet", ".json", ".jsonl", ".csv"):
            builder = {".json": "json", ".jsonl": "json", ".csv": "csv"}.get(Path(name).suffix, "parquet")
            data = datasets.load_dataset(builder, data_files=name, split=split or "train", **kwargs)
        else:
            data = datasets.load_dataset(name, split=split, **kwargs)
    except (ConnectionError, TimeoutError, OSError) as err:
        raise InputError(f"dataset {name!r}: cannot load it ({_first_line(err)}); {OFFLINE_HINT}") from None
    except ValueError as err:  # e.g. an unknown split: datasets names the ones there are
        raise InputError(f"dataset {name!r}: {_first_line(err)}") from None
    except Exception as err:  # datasets / huggingface_hub raise their own types for a missing repo
        raise InputError(f"dataset {name!r}: cannot load it ({type(err).__name__}: {_first_line(err)}); "
                         f"check the name, or {OFFLINE_HINT}") from None
    if isinstance(data, datasets.DatasetDict):
        raise InputError(f"dataset {name!r} has several splits ({', '.join(data)}); choose one with --split")
    out = Path(folder) if folder is not None else cache_dir() / "datasets"
    out.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9.-]+", "-", Path(name.rstrip("/")).name if Path(name).exists() else name)
    stem = re.sub(r"(?i)\b(accept|accepted|reject|rejected)\b", "x", stem).strip("-")  # not paper-layout words
    digest = hashlib.sha256(data._fingerprint.encode()).hexdigest()[:8]
    path = out / digest / f"{stem}{'_' + split if split else ''}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        tmp = path.with_suffix(".parquet.partial")
        data.to_parquet(str(tmp))
        tmp.replace(path)
    return path


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
