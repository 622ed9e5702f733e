"""The one record reader: formats, where each record came from, and errors naming file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from core.errors import BenchmarkFormatError, InputError
from core.records import Record, format_of, guess_format, parse_records, read_records


def values(records: list[Record]) -> list:
    return [r.value for r in records]


def wheres(records: list[Record]) -> list[str]:
    return [r.where for r in records]


def test_json_list_items_are_numbered_from_zero(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"q": 1}, "text", ["u", "a"]]))
    records = read_records(path)
    assert values(records) == [{"q": 1}, "text", ["u", "a"]]
    assert wheres(records) == [f"{path}, item 0", f"{path}, item 1", f"{path}, item 2"]


def test_jsonl_records_carry_their_line_and_skip_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"q": 1}\n\n["u", "a"]\n')
    records = read_records(path, name="a.jsonl")
    assert values(records) == [{"q": 1}, ["u", "a"]]
    assert wheres(records) == ["a.jsonl, line 1", "a.jsonl, line 3"]


def test_json_or_jsonl_is_told_by_content(tmp_path: Path) -> None:
    lines_in_json = tmp_path / "lines.json"
    lines_in_json.write_text('{"q": 1}\n{"q": 2}\n')
    assert wheres(read_records(lines_in_json, name="lines.json")) == ["lines.json, line 1",
                                                                      "lines.json, line 2"]
    document_in_jsonl = tmp_path / "doc.jsonl"
    document_in_jsonl.write_text('[\n  {"q": 1},\n  {"q": 2}\n]\n')
    assert values(read_records(document_in_jsonl)) == [{"q": 1}, {"q": 2}]
    # JSONL lines may be lists; a one-line .jsonl file holding a list is one record
    one_list = tmp_path / "one.jsonl"
    one_list.write_text('["u", "a"]\n')
    assert values(read_records(one_list)) == [["u", "a"]]
    one_list_json = tmp_path / "one.json"
    one_list_json.write_text('["u", "a"]\n')
    assert values(read_records(one_list_json)) == ["u", "a"]


def test_wrapping_objects_are_unwrapped_other_objects_are_one_record() -> None:
    assert values(parse_records('{"version": 2, "data": [{"q": 1}, {"q": 2}]}', "w", "json")) \
        == [{"q": 1}, {"q": 2}]
    assert values(parse_records('{"prompts": ["a", "b"]}', "w", "json")) == ["a", "b"]
    one = '{"conversation": ["u", "a"], "score": 4}'
    assert values(parse_records(one, "w", "json")) == [{"conversation": ["u", "a"], "score": 4}]
    messages = '{"messages": [{"role": "user", "content": "q"}]}'
    assert values(parse_records(messages, "w", "json")) == [json.loads(messages)]


def test_csv_cells_stay_text_and_rows_count_the_header(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('\ufeff,prompt,n\n0,"Hello, world",4\n1,"two\nlines",\n', encoding="utf-8")
    records = read_records(path, name="t.csv")
    # the byte-order mark and the unnamed index column are gone; an empty cell stays ""
    assert values(records) == [{"prompt": "Hello, world", "n": "4"}, {"prompt": "two\nlines", "n": ""}]
    assert wheres(records) == ["t.csv, row 2", "t.csv, row 3"]


@pytest.mark.parametrize("row", ['1,"two"', '1,"two",3,4'])
def test_ragged_csv_rows_are_refused_with_their_row_number(row: str) -> None:
    with pytest.raises(InputError, match=r"t\.csv, row 3: \d cell\(s\) but the header has 3 column"):
        parse_records(f'id,prompt,n\n0,"a",4\n{row}\n', "t.csv", "csv")


def test_csv_cells_may_hold_whole_conversations() -> None:
    big = "x" * 200_000  # over the csv module's default 128 KiB cell limit
    (record,) = parse_records(f"conversation\n{big}\n", "big", "csv")
    assert record.value == {"conversation": big}


def test_gzipped_files_and_parquet(tmp_path: Path) -> None:
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"q": 1}\n{"q": 2}\n'))
    assert values(read_records(gz)) == [{"q": 1}, {"q": 2}]
    csv_gz = tmp_path / "a.csv.gz"
    csv_gz.write_bytes(gzip.compress(b"q\nfirst\n"))
    assert values(read_records(csv_gz)) == [{"q": "first"}]
    parquet = tmp_path / "a.parquet"
    pd.DataFrame({"q": ["x", "y"], "score": [1.5, float("nan")],
                  "turns": [["u", "a"], ["v"]]}).to_parquet(parquet)
    records = read_records(parquet, name="a.parquet")
    assert values(records) == [{"q": "x", "score": 1.5, "turns": ["u", "a"]},
                               {"q": "y", "score": None, "turns": ["v"]}]
    assert type(records[1].value["turns"]) is list and wheres(records)[0] == "a.parquet, row 0"


def test_format_from_the_name_or_the_content() -> None:
    assert [format_of(n) for n in ("a.JSON", "a.jsonl.gz", "b.csv", "c.parquet", "d.txt", "e")] \
        == ["json", "jsonl", "csv", "parquet", None, None]
    assert [guess_format(t) for t in (' [1]', '{"a": 1}\n{"a": 2}', "prompt\nhi")] == ["json", "json", "csv"]
    assert values(parse_records('{"a": 1}\n{"a": 2}\n', "box")) == [{"a": 1}, {"a": 2}]
    assert values(parse_records("prompt\nhi\n", "box")) == [{"prompt": "hi"}]


def test_line_ends_and_unicode_line_separators(tmp_path: Path) -> None:
    path = tmp_path / "crlf.jsonl"
    path.write_bytes('{"q": "a\u2028b"}\r\n{"q": 2}\r\n'.encode())  # U+2028 is not a line end
    assert wheres(read_records(path, name="crlf.jsonl")) == ["crlf.jsonl, line 1", "crlf.jsonl, line 2"]
    assert read_records(path)[0].value == {"q": "a\u2028b"}
    old_mac = tmp_path / "cr.csv"
    old_mac.write_bytes(b'q,r\r"two\r\nlines",x\r')
    assert values(read_records(old_mac)) == [{"q": "two\nlines", "r": "x"}]


def test_unknown_suffix_is_read_by_content(tmp_path: Path) -> None:
    path = tmp_path / "conversations.txt"
    path.write_text('["u", "a"]\n["v", "b"]\n')
    assert values(read_records(path)) == [["u", "a"], ["v", "b"]]


@pytest.mark.parametrize("name, content, message", [
    ("bad.jsonl", '{"a": 1}\n{"a": 2,}\n', r"bad\.jsonl, line 2: malformed JSON \(column 9: "),
    ("bad.jsonl", '{"a": \n', r"bad\.jsonl, line 1: malformed JSON"),
    ("bad.json", '[\n {"a": 1},\n {"a": }\n]', r"bad\.json, line 3: malformed JSON \(column 8: "),
    ("lines.json", '{"a": 1}\n{"a": 2}\n{"a"\n', r"lines\.json, line 3: malformed JSON"),
    ("empty.json", "  \n\n", r"empty\.json: the file is empty"),
])
def test_errors_name_the_file_and_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(BenchmarkFormatError, match=message):
        read_records(path, BenchmarkFormatError, name=name)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.json: cannot read the file \(No such file"):
        read_records(tmp_path / "nope.json")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("q\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin\.csv: not UTF-8 text \(byte 5\)"):
        read_records(latin)
    broken_gz = tmp_path / "broken.jsonl.gz"
    broken_gz.write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match=r"broken\.jsonl\.gz: damaged gzip data"):
        read_records(broken_gz)
    damaged = bytearray(gzip.compress(json.dumps([{"q": f"row {i}"} for i in range(2000)]).encode()))
    damaged[len(damaged) // 2] ^= 0xFF  # a flipped byte mid-stream: zlib.error, not EOFError
    (tmp_path / "mid.json.gz").write_bytes(bytes(damaged))
    with pytest.raises(InputError, match=r"mid\.json\.gz: damaged gzip data .*compress the file again"):
        read_records(tmp_path / "mid.json.gz")
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(gzip.compress(b'[{"q": "x"}]' * 100)[:-12])
    with pytest.raises(InputError, match=r"cut\.json\.gz: the gzip file is cut short"):
        read_records(cut)
    with pytest.raises(InputError, match=r"is a folder"):
        read_records(tmp_path)
    broken_parquet = tmp_path / "broken.parquet"
    broken_parquet.write_bytes(b"not parquet")
    with pytest.raises(InputError, match=r"broken\.parquet: cannot read as Parquet"):
        read_records(broken_parquet)


def test_decompression_stops_at_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b" " * (3 * 1024 * 1024)))  # 3 MB of blanks in a few KB
    monkeypatch.setenv("FLR_MAX_FILE_MB", "1")
    with pytest.raises(InputError, match=r"bomb\.jsonl\.gz: .* more than 1 MB .*once decompressed.*FLR_MAX_FILE_MB"):
        read_records(bomb)


def test_files_over_the_record_limit_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLR_MAX_RECORDS", "3")
    assert len(parse_records("q\n1\n2\n3\n", "box", "csv")) == 3
    with pytest.raises(InputError, match=r"box: more than 3 records.*FLR_MAX_RECORDS"):
        parse_records("q\n1\n2\n3\n4\n", "box", "csv")


def test_pasted_text_errors() -> None:
    with pytest.raises(InputError, match="box: empty"):
        parse_records("  ", "box")
    with pytest.raises(InputError, match="unknown format 'yaml'"):
        parse_records("a: 1", "box", "yaml")
