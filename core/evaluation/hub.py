"""Benchmarks by name: a dataset of the Hugging Face Hub (or a local dataset folder, or an
`hf://` file) read through the `datasets` library and handed on as a Parquet file, so that it is
detected and evaluated like any other file (`core.evaluation.detect`).

`dataset_file("allenai/reward-bench", "filtered")` (or `config="helpful-base"` for a dataset with
several configurations, `revision=` for a Hub commit) loads the split (from `datasets`' own cache
when it was downloaded before), writes it once to `<cache_dir()>/datasets/`, and returns that
file; its name carries the dataset's and split's names, which become the benchmark's name.

Shortcut taken on purpose: a split is materialised whole (RewardBench's 3k rows are a few MB);
`--limit` applies afterwards, like for files.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.locations import cache_dir

OFFLINE_HINT = ("without network access a dataset must already be in the datasets cache "
                "(~/.cache/huggingface/datasets, or HF_DATASETS_CACHE; set HF_HUB_OFFLINE=1 to "
                "use that copy), or give its files (Parquet, JSONL) as paths instead")


@dataclass(frozen=True)
class DatasetFile:
    """A dataset split written as a Parquet file, and where it came from (for the report)."""

    path: Path
    source: dict[str, Any]  # name, config, split, requested and resolved revision, rows


def dataset_file(name: str, split: str | None = None, *, folder: Path | None = None,
                 datasets_cache: str | Path | None = None, config: str | None = None,
                 revision: str | None = None) -> Path:
    """The split `split` of dataset `name` as a Parquet file (see `load_dataset_file`)."""
    return load_dataset_file(name, split, folder=folder, datasets_cache=datasets_cache,
                             config=config, revision=revision).path


def load_dataset_file(name: str, split: str | None = None, *, folder: Path | None = None,
                      datasets_cache: str | Path | None = None, config: str | None = None,
                      revision: str | None = None) -> DatasetFile:
    """The split `split` of configuration `config` (e.g. HH-RLHF's "helpful-base") of dataset
    `name` at `revision` (a Hub branch, tag or commit), as a Parquet file written under
    `folder` (default `<cache_dir()>/datasets`). `name` is a Hub id, a local dataset folder or
    an `hf://` path. The source records the revision resolved: the Hub commit, or for a local
    folder the hash `datasets` gives its files."""
    try:
        import datasets
    except ImportError:
        raise InputError("reading a dataset by name needs the 'datasets' package: "
                         "pip install datasets") from None
    name = name.strip()
    if not name:
        raise InputError("--dataset needs a name, e.g. allenai/reward-bench")
    kwargs: dict[str, Any] = {"cache_dir": str(datasets_cache)} if datasets_cache else {}
    if revision:
        kwargs["revision"] = revision
    try:
        packaged = name.startswith("hf://") or Path(name).suffix in (".parquet", ".json", ".jsonl", ".csv")
        if packaged:
            kind = {".json": "json", ".jsonl": "json", ".csv": "csv"}.get(Path(name).suffix, "parquet")
            builder = datasets.load_dataset_builder(kind, data_files=name, **kwargs)
            split = split or "train"
        else:
            builder = datasets.load_dataset_builder(name, config, **kwargs)
        local = Path(name).exists()
        # What load_dataset does, keeping the builder for its revision. `datasets` keys a local
        # folder's cache by its card, not its files: rebuild it, so an edited file is read.
        builder.download_and_prepare(**({"download_mode": "force_redownload", "verification_mode": "no_checks"}
                                         if local else {}))
        data = builder.as_dataset(split=split)
    except (ConnectionError, TimeoutError, OSError) as err:
        raise InputError(f"dataset {name!r}: cannot load it ({_first_line(err)}); {OFFLINE_HINT}") from None
    except ValueError as err:  # an unknown split or config: datasets names the ones there are
        raise InputError(f"dataset {name!r}: {_config_hint(err)}") from None
    except Exception as err:  # datasets / huggingface_hub raise their own types for a missing repo
        raise InputError(f"dataset {name!r}: cannot load it ({type(err).__name__}: {_first_line(err)}); "
                         f"check the name, or {OFFLINE_HINT}") from None
    if isinstance(data, datasets.DatasetDict):
        raise InputError(f"dataset {name!r} has several splits ({', '.join(data)}); choose one with --split")
    out = Path(folder) if folder is not None else cache_dir() / "datasets"
    out.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9.-]+", "-", Path(name.rstrip("/")).name if Path(name).exists() else name)
    stem = re.sub(r"(?i)\b(accept|accepted|reject|rejected)\b", "x", stem).strip("-")  # not paper-layout words
    if local:
        resolved = _files_fingerprint(builder.config.data_files)
    else:  # a Hub dataset's builder hash is its commit; an hf:// file's is only the reader's code
        resolved = None if packaged else getattr(builder, "hash", None)
    # `_fingerprint` names the cache file, which a rebuilt local folder keeps: add its revision
    digest = hashlib.sha256(f"{data._fingerprint}{resolved if local else ''}".encode()).hexdigest()[:8]
    chosen = builder.config.name if config else None
    path = out / digest / f"{stem}{'_' + chosen if chosen else ''}{'_' + split if split else ''}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        tmp = path.with_suffix(".parquet.partial")
        data.to_parquet(str(tmp))
        tmp.replace(path)
    source = {"dataset": name, "config": chosen, "split": split, "requested_revision": revision,
              "revision": resolved, "rows": len(data), "file": path.name}
    return DatasetFile(path, source)


def _files_fingerprint(data_files: Any) -> str:
    """A local dataset's revision: a hash of its data files' contents (a Hub dataset's is its
    commit)."""
    digest = hashlib.sha256()
    for file in sorted({str(f) for files in (data_files or {}).values() for f in files}):
        digest.update(Path(file).name.encode() + b"\0")
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return "files:" + digest.hexdigest()[:16]


def _config_hint(err: ValueError) -> str:
    """`datasets`' message for a missing config, in this command line's words."""
    text = str(err).strip()
    if text.startswith("Config name is missing"):
        names = text.splitlines()[1] if len(text.splitlines()) > 1 else ""
        return (f"the dataset has several configurations; choose one with --dataset NAME:CONFIG or "
                f"--dataset-config CONFIG ({names.strip()})")
    return _first_line(err)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
