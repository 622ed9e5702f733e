"""LLaMA-Factory's dataset formats: DPO, KTO and SFT records (alpaca and sharegpt) and `dataset_info.json`.

Formats follow LLaMA-Factory's `data/README.md`: data files are JSON lists, and
`dataset_info.json` names each file with its `formatting`, `ranking` and `columns` (sharegpt
messages use the default tags `from` / `value` with roles `human` / `gpt`, so no `tags` are
written). The data files carry only documented fields. An existing `dataset_info.json` in the
output folder is merged into, not replaced, so the folder can be LLaMA-Factory's own `data/`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from core.errors import InputError
from core.mining.mining import KTOExample, PreferencePair, Sample
from core.mining.prompts import MiningPrompt
from core.textfiles import write_text


FLAVOURS = ("alpaca", "sharegpt")


HUMAN, GPT = "human", "gpt"  # LLaMA-Factory's default sharegpt role tags


DATASET_INFO = "dataset_info.json"


def alpaca_base(prompt: MiningPrompt, with_system: bool, with_history: bool) -> dict[str, Any]:
    record: dict[str, Any] = {"instruction": prompt.text, "input": ""}
    if with_system:
        record["system"] = prompt.system or ""
    if with_history:
        record["history"] = [list(pair) for pair in prompt.history]
    return record


def sharegpt_messages(prompt: MiningPrompt, reply: str | None = None) -> list[dict[str, str]]:
    turns = list(prompt.turns) + ([reply] if reply is not None else [])
    return [{"from": HUMAN if i % 2 == 0 else GPT, "value": t} for i, t in enumerate(turns)]


def sharegpt_base(prompt: MiningPrompt, reply: str | None, with_system: bool) -> dict[str, Any]:
    record: dict[str, Any] = {"conversations": sharegpt_messages(prompt, reply)}
    if with_system:
        record["system"] = prompt.system or ""
    return record


def dpo_records(pairs: Sequence[PreferencePair], flavour: str, with_system: bool = False,
                with_history: bool = False) -> list[dict[str, Any]]:
    if flavour == "alpaca":
        return [{**alpaca_base(p.prompt, with_system, with_history),
                 "chosen": p.chosen.response, "rejected": p.rejected.response} for p in pairs]
    return [{**sharegpt_base(p.prompt, None, with_system),
             "chosen": {"from": GPT, "value": p.chosen.response},
             "rejected": {"from": GPT, "value": p.rejected.response}} for p in pairs]


def kto_records(examples: Sequence[KTOExample], flavour: str, with_system: bool = False,
                with_history: bool = False) -> list[dict[str, Any]]:
    if flavour == "alpaca":
        return [{**alpaca_base(e.prompt, with_system, with_history), "output": e.sample.response,
                 "kto_tag": e.desirable} for e in examples]
    return [{**sharegpt_base(e.prompt, e.sample.response, with_system), "kto_tag": e.desirable}
            for e in examples]


def sft_records(examples: Sequence[tuple[int, MiningPrompt, Sample]], flavour: str,
                with_system: bool = False, with_history: bool = False) -> list[dict[str, Any]]:
    if flavour == "alpaca":
        return [{**alpaca_base(prompt, with_system, with_history), "output": sample.response}
                for _, prompt, sample in examples]
    return [sharegpt_base(prompt, sample.response, with_system) for _, prompt, sample in examples]


def dataset_info_entry(file_name: str, kind: str, flavour: str, with_system: bool = False,
                       with_history: bool = False) -> dict[str, Any]:
    """The `dataset_info.json` entry LLaMA-Factory's data/README.md gives for this kind."""
    if kind not in ("dpo", "kto", "sft"):
        raise ValueError(f"unknown dataset kind {kind!r}")
    entry: dict[str, Any] = {"file_name": file_name}
    if flavour == "sharegpt":
        entry["formatting"] = "sharegpt"
    if kind == "dpo":
        entry["ranking"] = True
    if flavour == "alpaca":
        columns = {"prompt": "instruction", "query": "input"}
        if kind == "dpo":
            columns.update(chosen="chosen", rejected="rejected")
        else:
            columns["response"] = "output"
        if with_history:
            columns["history"] = "history"
    else:
        columns = {"messages": "conversations"}
        if kind == "dpo":
            columns.update(chosen="chosen", rejected="rejected")
    if kind == "kto":
        columns["kto_tag"] = "kto_tag"
    if with_system:
        columns["system"] = "system"
    entry["columns"] = columns
    return entry


def write_dataset_info(output_dir: str | Path, entries: Mapping[str, Mapping[str, Any]]) -> Path:
    """Add or replace `entries` in DIR/dataset_info.json, keeping any other datasets there."""
    path = Path(output_dir) / DATASET_INFO
    info: dict[str, Any] = {}
    if path.is_file():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise InputError(
                f"{path}: existing file is not valid JSON (line {err.lineno}: {err.msg}); "
                "fix or remove it so the new datasets can be added"
            ) from None
        if not isinstance(info, dict):
            raise InputError(f"{path}: existing file is not a JSON object of datasets; fix or remove it")
    info.update({name: dict(entry) for name, entry in entries.items()})
    write_text(path, json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return path


def write_json(path: Path, records: Any) -> Path:
    write_text(path, json.dumps(records, indent=2, ensure_ascii=False) + "\n")
    return path
