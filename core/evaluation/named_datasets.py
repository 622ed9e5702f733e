"""Benchmarks by name: a dataset of the Hugging Face Hub (or a local dataset folder, or an
`hf://` file) read through the `datasets` library and handed on as a Parquet file, so that it is
detected and evaluated like any other file (`core.evaluation.detect`).

`dataset_file("allenai/reward-bench", "filtered")` (or `config="helpful-base"` for a dataset with
several configurations, `revision=` for a Hub commit) loads the split (from `datasets`' own cache
when it was downloaded before), writes it once to `<cache_dir()>/datasets/`, and returns that
file; its name carries the dataset's and split's names, which become the benchmark's name.

A server that lets strangers name datasets (the app in hosted mode) passes `allowed`, the Hub
ids its owner listed: then a name must be one of them, checked as text before anything touches
the disk or the network (no local folders, globs or `scheme://` URLs such as `hf://` or
`webhdfs://`), the download goes to a temporary folder that is removed once the Parquet copy is
written, the split is refused above the record and byte caps (`core.limits`), and messages never
quote the library's errors, which can hold server paths or a file's keys.

Shortcut taken on purpose: a split is materialised whole (RewardBench's 3k rows are a few MB);
`--limit` applies afterwards, like for files.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from core.errors import ConfigError, InputError
from core.limits import InputLimits, shorten
from core.locations import cache_dir

OFFLINE_HINT = ("without network access a dataset must already be in the datasets cache "
                "(~/.cache/huggingface/datasets, or HF_DATASETS_CACHE; set HF_HUB_OFFLINE=1 to "
                "use that copy), or give its files (Parquet, JSONL) as paths instead")


# A Hub id as the Hub spells them (owner/name, or a legacy name alone), optionally `:config`;
# no "..", no leading dot or dash, no slash beyond the one between owner and name.
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9])?"
HUB_ID = re.compile(rf"(?!.*\.\.)({_PART}(?:/{_PART})?)(?::([A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}))?")
SPLIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # a split's name; no slicing syntax
OFF = ("datasets by name are switched off on this server; its owner can offer some by listing "
       "their Hub ids in FLR_ALLOWED_DATASETS (comma-separated, e.g. allenai/reward-bench)")


def parse_allowed_datasets(text: str | None) -> tuple[str, ...]:
    """The owner's list (`FLR_ALLOWED_DATASETS`): comma-separated Hub ids, each optionally
    `owner/name:config`. Anything else (a path, a URL, a glob) is a configuration error."""
    entries = tuple(e.strip() for e in (text or "").split(",") if e.strip())
    for entry in entries:
        if not HUB_ID.fullmatch(entry):
            raise ConfigError(f"FLR_ALLOWED_DATASETS: {shorten(entry)!r} is not a Hub dataset id; "
                              "list ids like allenai/reward-bench or owner/name:config, never "
                              "paths or URLs")
    return entries


def check_dataset_name(name: str, split: str | None, allowed: Sequence[str]) -> tuple[str, str | None, str | None]:
    """(repo, config, split) for `name` if it is one of `allowed`; raises otherwise. Only text
    is compared: nothing here opens a file or a connection."""
    name, split = (name or "").strip(), (split or "").strip() or None
    if not allowed:
        raise InputError(OFF)
    if name not in allowed:
        raise InputError(f"dataset {shorten(name, 80)!r} is not offered on this server; choose one "
                         f"of {', '.join(allowed)}")
    if split is not None and not SPLIT.fullmatch(split):
        raise InputError(f"split {shorten(split, 80)!r}: a split is named with letters, digits, "
                         "'_', '-' or '.', e.g. test or filtered")
    match = HUB_ID.fullmatch(name)
    assert match is not None, "the owner's list is checked when the settings are read"
    return match.group(1), match.group(2), split


@dataclass(frozen=True)
class DatasetFile:
    """A dataset split written as a Parquet file, and where it came from (for the report)."""

    path: Path
    source: dict[str, Any]  # name, config, split, requested and resolved revision, rows


def dataset_file(name: str, split: str | None = None, *, folder: Path | None = None,
                 datasets_cache: str | Path | None = None, config: str | None = None,
                 revision: str | None = None, allowed: Sequence[str] | None = None,
                 max_age: float | None = None) -> Path:
    """The split `split` of dataset `name` as a Parquet file (see `load_dataset_file`). With
    `allowed` (a hosted server's list) only one of those Hub ids, checked as text before any
    import or I/O, capped, and a copy older than `max_age` seconds is fetched again."""
    if allowed is not None:
        repo, config, split = check_dataset_name(name, split, allowed)  # before any import or I/O
        out = Path(folder) if folder is not None else cache_dir() / "datasets"
        return _allowed_copy(name.strip(), repo, config, split, out, max_age)
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


def _allowed_copy(name: str, repo: str, config: str | None, split: str | None, out: Path,
                  max_age: float | None) -> Path:
    """One listed dataset's split as a Parquet copy under `out`, reused while younger than
    `max_age`; the download itself lives in a temporary folder removed afterwards."""
    stem = re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-")
    stem = re.sub(r"(?i)\b(accept|accepted|reject|rejected)\b", "x", stem).strip("-")
    path = out / "allowed" / f"{stem}{'_' + split if split else ''}.parquet"
    if path.is_file() and (max_age is None or time.time() - path.stat().st_mtime < max_age):
        return path
    try:
        import datasets
    except ImportError:
        raise InputError("datasets by name need the 'datasets' package on this server; ask its owner") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    limits = InputLimits.current()
    download = Path(tempfile.mkdtemp(prefix="download-", dir=path.parent))
    try:
        data = _load_capped(datasets, name, repo, config, split, download, limits)
        tmp = download / "copy.parquet"
        data.to_parquet(str(tmp))
        if tmp.stat().st_size > limits.file_bytes:
            raise InputError(f"dataset {name!r}: its split is over the limit of {limits.file_mb:,} MB "
                             "for one input; ask the owner of this server")
        tmp.replace(path)
    finally:
        shutil.rmtree(download, ignore_errors=True)  # the downloaded files are never kept
    return path


def _load_capped(datasets: Any, name: str, repo: str, config: str | None, split: str | None,
                 download: Path, limits: InputLimits) -> Any:
    """The split, refused above the caps: before the download when the Hub's metadata gives the
    sizes, after it otherwise. No message quotes the library's own error text."""
    try:
        builder = datasets.load_dataset_builder(repo, config, cache_dir=str(download))
        splits = dict(builder.info.splits or {})
        if split is None and len(splits) > 1:
            raise InputError(f"dataset {name!r} has several splits ({', '.join(splits)}); choose one")
        if split is not None and splits and split not in splits:
            raise InputError(f"dataset {name!r} has no split {split!r}; choose one of {', '.join(splits)}")
        known = splits.get(split) if split is not None else next(iter(splits.values()), None)
        _check_size(name, getattr(known, "num_examples", None), getattr(builder.info, "download_size", None), limits)
        builder.download_and_prepare()
        data = builder.as_dataset(split=split)
    except InputError:
        raise
    except Exception as err:  # network, a gated or missing repo, an unknown config: say which kind only
        raise InputError(f"dataset {name!r}: cannot load it from the Hugging Face Hub "
                         f"({type(err).__name__}); try again later, check the split name, or ask "
                         "the owner of this server") from None
    if isinstance(data, datasets.DatasetDict):
        raise InputError(f"dataset {name!r} has several splits ({', '.join(data)}); choose one")
    _check_size(name, data.num_rows, data.data.nbytes, limits)
    return data


def _check_size(name: str, rows: int | None, size: int | None, limits: InputLimits) -> None:
    if rows is not None and rows > limits.records:
        raise InputError(f"dataset {name!r}: {rows:,} rows is over the limit of {limits.records:,} "
                         "records per input; ask the owner of this server for a smaller split")
    if size and size > limits.file_bytes:
        raise InputError(f"dataset {name!r}: {size / 2**20:,.0f} MB is over the limit of "
                         f"{limits.file_mb:,} MB per input; ask the owner of this server for a smaller split")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
