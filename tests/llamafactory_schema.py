"""A schema check for LLaMA-Factory datasets, written from LLaMA-Factory's data/README.md.

dataset_info.json keys `file_name`, `formatting`, `ranking`, `columns`, `tags`; alpaca columns
instruction / input / output / chosen / rejected / history / system / kto_tag; sharegpt
`conversations` of `{"from", "value"}` messages with `human` in odd and `gpt` in even positions,
a preference prompt ending with a human turn and `chosen` / `rejected` gpt messages, and KTO's
boolean `kto_tag`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DOC_COLUMNS = {"prompt", "query", "response", "history", "messages", "system", "tools", "images",
               "videos", "audios", "chosen", "rejected", "kto_tag"}
DOC_ENTRY_KEYS = {"hf_hub_url", "ms_hub_url", "script_url", "cloud_file_name", "file_name", "formatting",
                  "ranking", "subset", "split", "folder", "num_samples", "columns", "tags"}
ALPACA_DEFAULTS = {"prompt": "instruction", "query": "input", "response": "output"}


def check_llamafactory_dataset(folder: Path, name: str) -> list[dict[str, Any]]:
    """Validate one dataset the way LLaMA-Factory's README describes it; return its records."""
    info = json.loads((folder / "dataset_info.json").read_text())
    entry = info[name]
    assert set(entry) <= DOC_ENTRY_KEYS
    assert entry.get("formatting", "alpaca") in ("alpaca", "sharegpt")
    assert isinstance(entry.get("ranking", False), bool)
    columns = entry.get("columns", {})
    assert set(columns) <= DOC_COLUMNS
    records = json.loads((folder / entry["file_name"]).read_text())
    assert isinstance(records, list) and records
    ranking = entry.get("ranking", False)
    for record in records:
        assert set(record) == set(columns.values()), (record.keys(), columns)
        if "kto_tag" in columns:
            assert isinstance(record[columns["kto_tag"]], bool)
        if "system" in columns:
            assert isinstance(record[columns["system"]], str)
        if entry.get("formatting", "alpaca") == "alpaca":
            col = {**ALPACA_DEFAULTS, **columns}
            assert isinstance(record[col["prompt"]], str) and record[col["prompt"]]
            assert isinstance(record.get(col["query"], ""), str)
            if "history" in columns:
                history = record[columns["history"]]
                assert isinstance(history, list)
                assert all(isinstance(h, list) and len(h) == 2 and all(isinstance(t, str) for t in h)
                           for h in history)
            if ranking:
                assert isinstance(record[col["chosen"]], str) and isinstance(record[col["rejected"]], str)
            else:
                assert isinstance(record[col["response"]], str) and record[col["response"]]
        else:
            tags = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                    **entry.get("tags", {})}
            messages = record[columns.get("messages", "conversations")]
            for i, message in enumerate(messages):
                assert set(message) == {tags["role_tag"], tags["content_tag"]}
                expected = tags["user_tag"] if i % 2 == 0 else tags["assistant_tag"]
                assert message[tags["role_tag"]] == expected
                assert isinstance(message[tags["content_tag"]], str)
            if ranking:
                assert len(messages) % 2 == 1  # the prompt ends with the human's turn
                for key in ("chosen", "rejected"):
                    reply = record[columns[key]]
                    assert reply == {tags["role_tag"]: tags["assistant_tag"], tags["content_tag"]: reply["value"]}
            else:
                assert len(messages) % 2 == 0  # ends with the gpt reply
    return records
