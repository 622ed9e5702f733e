"""Hostile inputs for the command line, written into a folder: each case is a command, the exit
status it must end with (0 or 2), a pattern its message must match, and what must hold after.

Shared by `tests/hostile/test_cli_hostile.py` (in-process, fast) and the harness
`benchmarks/hostile_inputs.py` (real processes with a time limit, printed as a table). Add the
next round of hostile inputs here.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

CONVERSATION = ["What is the capital of France?", "Paris."]


@dataclass(frozen=True)
class Case:
    name: str
    argv: list[str]  # after `flr`
    exit: int  # 0 or 2
    message: str  # regex the stderr must match
    env: dict[str, str] = field(default_factory=dict)
    after: Callable[[], None] | None = None  # raises AssertionError when the aftermath is wrong


def _jsonl(path: Path, rows: list) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _followups(path: Path, positive: list[str], negative: list[str]) -> str:
    path.write_text(json.dumps({"relevance": {"positive": positive, "negative": negative}}), encoding="utf-8")
    return str(path)


def cli_cases(folder: Path, model: str) -> list[Case]:
    """Every case, with its files written under `folder`; `model` is a small local model folder."""
    folder.mkdir(parents=True, exist_ok=True)
    tiny = ["--model", model, "--device", "cpu"]
    good = _jsonl(folder / "good.jsonl", [CONVERSATION])
    small_set = _followups(folder / "set.json", ["Thanks!"], ["That is wrong."])
    out = str(folder / "out.jsonl")
    cases: list[Case] = []

    def score(name: str, argv: list[str], exit: int, message: str, **kw) -> None:
        cases.append(Case(name, ["score", *argv], exit, message, **kw))

    # damaged and foreign bytes
    damaged = bytearray(gzip.compress(json.dumps([CONVERSATION] * 3000).encode()))
    damaged[len(damaged) // 2] ^= 0xFF
    (folder / "damaged.json.gz").write_bytes(bytes(damaged))
    score("gzip damaged mid-stream", ["--input", str(folder / "damaged.json.gz"), "--output", out],
          2, r"damaged\.json\.gz: damaged gzip data")
    (folder / "latin1.jsonl").write_bytes('["caf\xe9?", "oui"]\n'.encode("latin-1"))
    score("input not UTF-8", ["--input", str(folder / "latin1.jsonl"), "--output", out], 2, "not UTF-8")
    (folder / "latin1-set.json").write_bytes('{"r": {"positive": ["tr\xe8s bien"], "negative": ["non"]}}'.encode("latin-1"))
    score("follow-up set not UTF-8", ["--input", good, "--output", out, "--followups",
                                      str(folder / "latin1-set.json")], 2, r"latin1-set\.json: not UTF-8")
    score("follow-up of 1.2 MB", ["--input", good, "--output", out, "--followups",
                                  _followups(folder / "huge-set.json", ["x" * 1_200_000], ["no"])],
          2, r"over the limit .*FLR_MAX_FOLLOWUP_CHARS")
    bomb = folder / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b" " * (3 * 1024 * 1024)))
    cases.append(Case("gzip bomb", ["--max", "file_mb=1", "score", "--input", str(bomb), "--output", out],
                      2, r"more than 1 MB .*once decompressed"))
    # outputs
    score("output is a folder", ["--input", good, "--output", str(folder), *tiny], 2, "is a folder")
    (folder / "a-file").write_text("x")
    score("output under a file", ["--input", good, "--output", str(folder / "a-file" / "o.jsonl"), *tiny],
          2, "cannot write here")
    existing = folder / "existing.jsonl"
    existing.write_text('{"kept": true}\n')

    def existing_kept() -> None:
        assert existing.read_text() == '{"kept": true}\n', "a failed run changed the existing output"
    score("failed run keeps existing output", ["--input", good, "--output", str(existing), *tiny,
                                               "--max-length", "8"], 2, "fit", after=existing_kept)
    # sizes
    long_conv = [f"turn {i}: a few words" for i in range(1000)]
    score("1,000 turns", ["--input", _jsonl(folder / "t1000.jsonl", [long_conv]), "--output", out,
                          "--followups", small_set, *tiny], 0, "wrote 1 scored")
    huge_conv = [f"turn {i}" for i in range(10_002)]
    score("10,002 turns over the limit", ["--input", _jsonl(folder / "t10k.jsonl", [huge_conv]),
                                          "--output", out, *tiny], 2, r"10,002 turns is over the limit")
    cases.append(Case("10,002 turns, limit raised", [
        "--max", "turns=20000", "score", "--input", str(folder / "t10k.jsonl"), "--output", out,
        "--followups", small_set, *tiny], 0, "wrote 1 scored"))
    score("utterance of 300k characters", ["--input", _jsonl(folder / "long-turn.jsonl",
                                                             [["hi", "y" * 300_000]]),
                                           "--output", out, *tiny], 2, r"over the limit .*FLR_MAX_TURN_CHARS")
    # models
    score("missing local folder", ["--input", good, "--output", out, "--model", "./no/such/model"],
          2, "no such folder")
    score("Hub id offline", ["--input", good, "--output", out, "--model", "someorg/not-cached-model"],
          2, r"not in the local Hugging Face cache", env={"HF_HUB_OFFLINE": "1"})
    score("batch size 0", ["--input", good, "--output", out, "--batch-size", "0"], 2, "batch size")
    cases.append(Case("mine --temperature nan", [
        "mine", "--prompts", _jsonl(folder / "prompts.jsonl", ["Hi?"]), "--output-dir",
        str(folder / "mined"), "--temperature", "nan"], 2, "temperature must be"))
    (folder / "prompts-latin1.txt.jsonl").write_bytes('"caf\xe9"\n'.encode("latin-1"))
    cases.append(Case("prompt file not UTF-8", [
        "mine", "--prompts", str(folder / "prompts-latin1.txt.jsonl"), "--output-dir", str(folder / "mined")],
        2, "not UTF-8"))
    # numbers in benchmarks
    pair = folder / "pair"
    pair.mkdir(exist_ok=True)
    _jsonl(pair / "toy_accept_relevance.jsonl", [{"conversation": CONVERSATION, "positive": [1.0] * 3,
                                                  "negative": [0.0] * 3}])
    _jsonl(pair / "toy_reject_relevance.jsonl", [{"conversation": CONVERSATION, "positive": [1.0] * 10,
                                                  "negative": [0.0] * 10}])
    cases.append(Case("pair with 3 vs 10 values", ["evaluate", str(pair), "--no-cache", "--report",
                                                   str(folder / "r.json")], 2, "same follow-up set"))
    for bad in ("NaN", "Infinity", "1e400", '"inf"'):
        path = folder / f"rating-{bad.strip(chr(34))}.jsonl"
        path.write_text(json.dumps({"conversation": CONVERSATION, "positive": [1.0], "negative": [0.0]})[:-1]
                        + f', "score": {bad}}}\n' + json.dumps({"conversation": CONVERSATION, "positive": [1.0],
                                                                 "negative": [0.0], "score": 2}) + "\n")
        cases.append(Case(f"rating score {bad}", ["evaluate", str(path), "--no-cache", "--report",
                                                 str(folder / "r.json")], 2, "finite number|empty \\(NaN\\)"))
    (folder / "ragged.csv").write_text('conversation,score\n"[""q"", ""a""]",3\n"[""q"", ""b""]",4,9\n')
    cases.append(Case("ragged CSV row", ["evaluate", str(folder / "ragged.csv"), "--no-cache", "--report",
                                         str(folder / "r.json")], 2, r"row 3: 3 cell\(s\)"))
    rank = _jsonl(folder / "ranking.jsonl", [{"model": m, "conversation": CONVERSATION, "positive": [v],
                                             "negative": [0.0]} for m, v in (("a", 1.0), ("b", 2.0), ("c", 0.5))])
    (folder / "elo-latin1.json").write_bytes('{"caf\xe9": 1000}'.encode("latin-1"))
    cases.append(Case("ELO table not UTF-8", ["evaluate", rank, "--elo", str(folder / "elo-latin1.json"),
                                              "--no-cache", "--report", str(folder / "r.json")], 2, "not UTF-8"))
    (folder / "elo-nan.json").write_text('{"a": NaN, "b": 1000}')
    cases.append(Case("ELO value NaN", ["evaluate", rank, "--elo", str(folder / "elo-nan.json"), "--no-cache",
                                        "--report", str(folder / "r.json")], 2, "finite number|empty \\(NaN\\)"))
    # caches
    conv_only = _jsonl(folder / "pairs_accept.jsonl", [{"conversation": CONVERSATION}])
    _jsonl(folder / "pairs_reject.jsonl", [{"conversation": ["What is the capital of France?", "Lyon."]}])
    for kind in ("garbage", "foreign", "folder"):
        cache = folder / f"cache-{kind}" / "scores.sqlite"
        cache.parent.mkdir(exist_ok=True)
        if kind == "garbage":
            cache.write_bytes(b"\x00garbage" * 512)
        elif kind == "foreign":
            db = sqlite3.connect(cache)
            db.execute("CREATE TABLE scores (x)")
            db.execute("INSERT INTO scores VALUES (42)")
            db.commit()
            db.close()
        else:
            cache.mkdir(exist_ok=True)

        def cache_after(cache: Path = cache, kind: str = kind) -> None:
            if kind == "garbage":
                assert list(cache.parent.glob("scores.sqlite.damaged-*")), "damaged cache not kept aside"
            if kind == "foreign":
                assert sqlite3.connect(cache).execute("SELECT x FROM scores").fetchall() == [(42,)]
        cases.append(Case(f"score cache {kind}", [
            "evaluate", conv_only, str(folder / "pairs_reject.jsonl"), "--cache", str(cache),
            "--followups", small_set, "--report", str(folder / f"r-{kind}.json"), *tiny],
            0, "score cache", after=cache_after))
    return cases


# "Dataset by name" in hosted mode (tests/hostile/test_datasets_hostile.py): every one is refused
# before the disk or the network is touched, with or without an owner's list.
HOSTILE_DATASET_NAMES = [
    "/tmp/gradio/*/*pairs.jsonl",  # another visitor's upload, by glob
    "/etc/passwd",
    "../../home/user/.cache/flr/app/scores.sqlite",
    "~/.ssh/id_rsa",
    "./owner/bench",
    "owner/bench/../../secret",
    "owner/*",
    "webhdfs://127.0.0.1:9870/webhdfs/v1/x",  # an internal address, through fsspec
    "http://169.254.169.254/latest/meta-data/",
    "file:///etc/hostname",
    "hf://datasets/owner/bench/*.jsonl",
    "s3://bucket/key.parquet",
    "C:\\Windows\\win.ini",
    "owner/bench:../../x",
    "x" * 10_000,
]
