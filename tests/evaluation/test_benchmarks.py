"""Benchmark loaders: formats, kind detection, the paper's layout, real-data slices, bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from core.evaluation.benchmark import describe_benchmarks
from core.evaluation.detect import detect_benchmarks
from core.names import (COL_CONVERSATION, COL_ERROR, COL_MODEL, COL_PRECOMPUTED, COL_PROMPT, COL_SIDE, COL_TRUTH,
                        PAIRWISE, RANKING, RATING)
from core.errors import BenchmarkFormatError


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def conv(i: int, reply: str = "reply") -> list[str]:
    return [f"question {i}", f"{reply} {i}"]


# ----------------------------------------------------------------------------- paper layout

def test_paper_layout_pairs_entries_by_position_and_combines_categories(tmp_path: Path) -> None:
    for side in ("accept", "reject"):
        for cat in ("relevance", "correctness"):
            key = "positve" if (side, cat) == ("reject", "correctness") else "positive"
            write_jsonl(tmp_path / f"helpful_base_{side}_{cat}.jsonl",
                        [{"conversation": conv(i, side), key: [float(i)], "negative": [0.0]}
                         for i in range(3)])
    (b,) = detect_benchmarks([tmp_path])
    assert (b.name, b.kind, b.n, b.precomputed) == ("helpful_base", PAIRWISE, 3, True)
    assert b.categories == ("correctness", "relevance")
    chosen = b.frame[b.frame[COL_SIDE] == "chosen"].reset_index(drop=True)
    rejected = b.frame[b.frame[COL_SIDE] == "rejected"].reset_index(drop=True)
    assert chosen[COL_CONVERSATION][2].reply == "accept 2"
    assert rejected[COL_CONVERSATION][2].reply == "reject 2"
    # the misspelled key is read like the right one
    assert rejected[COL_PRECOMPUTED][1]["correctness"] == ((1.0,), (0.0,))


def test_paper_layout_without_values_is_to_be_scored(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "x_accept.jsonl", [{"conversation": conv(0)}])
    write_jsonl(tmp_path / "x_reject.jsonl", [{"conversation": conv(0, "worse")}])
    (b,) = detect_benchmarks([tmp_path / "x_accept.jsonl", tmp_path / "x_reject.jsonl"])
    assert b.kind == PAIRWISE and not b.precomputed and b.n == 1
    table = describe_benchmarks([b])
    assert table.loc[0, "values"] == "to be scored" and table.loc[0, "rows"] == 1


def test_accept_reject_length_mismatch_names_both_files(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "hh_accept_relevance.jsonl", [{"conversation": conv(i)} for i in range(3)])
    write_jsonl(tmp_path / "hh_reject_relevance.jsonl", [{"conversation": conv(i)} for i in range(2)])
    with pytest.raises(BenchmarkFormatError) as err:
        detect_benchmarks([tmp_path])
    message = str(err.value)
    assert "hh_accept_relevance.jsonl has 3 entries" in message
    assert "hh_reject_relevance.jsonl has 2" in message


def test_accept_file_without_reject_partner(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "hh_accept.jsonl", [{"conversation": conv(0)}])
    with pytest.raises(BenchmarkFormatError, match="no matching reject file"):
        detect_benchmarks([tmp_path / "hh_accept.jsonl"])


# ----------------------------------------------------------------------------- other formats

def test_rewardbench_prompt_with_string_and_message_replies(tmp_path: Path) -> None:
    rows = [
        {"prompt": "Say hi", "chosen": "Hi!", "rejected": "No."},
        {"prompt": "Say bye", "chosen": [{"role": "assistant", "content": "Bye!"}],
         "rejected": [{"role": "user", "content": "Say bye"}, {"role": "assistant", "content": "..."}]},
    ]
    (b,) = detect_benchmarks([write_jsonl(tmp_path / "rb.jsonl", rows)])
    assert (b.kind, b.source_format, b.n) == (PAIRWISE, "rewardbench", 2)
    convs = list(b.frame[COL_CONVERSATION])
    assert [c.utterances for c in convs] == [("Say hi", "Hi!"), ("Say hi", "No."),
                                             ("Say bye", "Bye!"), ("Say bye", "...")]


def test_csv_parquet_and_gzip_read_alike(tmp_path: Path) -> None:
    rows = [{"conversation": json.dumps(conv(i)), "rating": r} for i, r in enumerate([1, 5, 3])]
    pd.DataFrame(rows).to_csv(tmp_path / "r.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "r.parquet")
    with gzip.open(tmp_path / "r.jsonl.gz", "wt") as fh:
        fh.write("".join(json.dumps({"conversation": conv(i), "rating": r}) + "\n"
                         for i, r in enumerate([1, 5, 3])))
    found = detect_benchmarks([tmp_path / "r.csv", tmp_path / "r.parquet", tmp_path / "r.jsonl.gz"])
    assert [b.kind for b in found] == [RATING] * 3
    for b in found:
        assert list(b.frame[COL_TRUTH]) == [1.0, 5.0, 3.0]
        assert b.frame[COL_CONVERSATION][1].utterances == ("question 1", "reply 1")


def test_score_lists_are_averaged_and_user_named_fields_found(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "judged.jsonl", [
        {"conversation": conv(0), "gpt4_score": [3, 2, 3], "scores": {"helpfulness": 4}},
        {"conversation": conv(1), "gpt4_score": [5, 5, 4], "scores": {"helpfulness": 1}}])
    (b,) = detect_benchmarks([path])
    assert list(b.frame[COL_TRUTH]) == pytest.approx([8 / 3, 14 / 3])
    (b,) = detect_benchmarks([path], score_field="scores.helpfulness")
    assert list(b.frame[COL_TRUTH]) == [4.0, 1.0]


def test_kind_override_turns_a_rated_file_with_models_into_a_ranking(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "wb.jsonl", [
        {"conversation": conv(i), "model": m, "score": 1} for i in range(2) for m in ("a", "b")])
    assert detect_benchmarks([path])[0].kind == RATING
    (b,) = detect_benchmarks([path], kind=RANKING)
    assert b.kind == RANKING and b.models == ["a", "b"]


def test_unusable_conversation_marks_the_row_only(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [
        {"conversation": conv(0), "score": 1},
        {"conversation": ["only a question"], "score": 2},
        {"conversation": conv(2), "score": 3}])
    (b,) = detect_benchmarks([path])
    errors = list(b.frame[COL_ERROR])
    assert errors[0] is None and errors[2] is None
    assert "r.jsonl, line 2" in errors[1]
    assert b.n_invalid == 1


# ----------------------------------------------------------------------------- real data slices

def test_hh_rlhf_slice(shared_data: Path, tmp_path: Path) -> None:
    with gzip.open(shared_data / "hh_rlhf" / "helpful-base-test.jsonl.gz", "rt") as fh:
        lines = [next(fh) for _ in range(3)]
    path = tmp_path / "helpful-base-test.jsonl"
    path.write_text("".join(lines))
    (b,) = detect_benchmarks([path])
    assert (b.kind, b.source_format, b.n) == (PAIRWISE, "hh-rlhf", 3)
    first = json.loads(lines[0])
    chosen, rejected = b.frame[COL_CONVERSATION][0], b.frame[COL_CONVERSATION][1]
    assert chosen.utterances[0] == "Do you know why turkeys became the official food of thanksgiving?"
    assert chosen.utterances[:-1] == rejected.utterances[:-1]
    assert first["chosen"].rstrip().endswith(chosen.reply)
    assert first["rejected"].rstrip().endswith(rejected.reply)


def test_llmbar_slice_uses_the_label(shared_data: Path) -> None:
    (b,) = detect_benchmarks([shared_data / "llmbar" / "LLMBar_Natural.json"])
    data = json.loads((shared_data / "llmbar" / "LLMBar_Natural.json").read_text())
    assert (b.kind, b.source_format, b.n) == (PAIRWISE, "llmbar", len(data))
    for i in range(3):
        better = data[i]["output_1"] if str(data[i]["label"]) == "1" else data[i]["output_2"]
        chosen = b.frame[(b.frame["row"] == i) & (b.frame[COL_SIDE] == "chosen")][COL_CONVERSATION].iloc[0]
        assert chosen.utterances == (data[i]["input"], better)


def test_rating_slice(shared_data: Path) -> None:
    (b,) = detect_benchmarks([shared_data / "ratings" / "mt_bench_prometheus_gpt4.jsonl"])
    first = json.loads((shared_data / "ratings" / "mt_bench_prometheus_gpt4.jsonl").open().readline())
    assert (b.kind, b.n, b.precomputed) == (RATING, 320, False)
    assert b.frame[COL_TRUTH][0] == pytest.approx(first["score"])
    assert b.frame[COL_CONVERSATION][0].utterances == tuple(first["conversation"])
    assert b.frame[COL_MODEL][0] == first["model"]


def test_arena_hard_answers_join_their_questions(shared_data: Path) -> None:
    root = shared_data / "arena_hard_v0.1"
    files = [root / "question.jsonl", root / "model_answer" / "gemma-2b-it.jsonl.gz",
             root / "model_answer" / "yi-large.jsonl.gz"]
    (b,) = detect_benchmarks(files)
    assert b.kind == RANKING and b.models == ["gemma-2b-it", "yi-large"]
    questions = {json.loads(line)["question_id"]: json.loads(line)["turns"][0]["content"]
                 for line in (root / "question.jsonl").open()}
    row = b.frame.iloc[0]
    assert row[COL_CONVERSATION].utterances[0] == questions[row[COL_PROMPT]]
    small = b.limited(2)
    assert small.frame.groupby(COL_MODEL).size().to_dict() == {"gemma-2b-it": 2, "yi-large": 2}


# ----------------------------------------------------------------------------- bad input

def test_malformed_jsonl_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"chosen": "a", "rejected": "b"}\n{"chosen": "a", \n')
    with pytest.raises(BenchmarkFormatError, match=r"bad\.jsonl, line 2: malformed JSON"):
        detect_benchmarks([path])


def test_malformed_json_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[\n {"input": "a",\n  "output_1": }\n]')
    with pytest.raises(BenchmarkFormatError, match=r"bad\.json, line 3: malformed JSON"):
        detect_benchmarks([path])


def test_missing_field_says_which_where_and_what(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"chosen": "\n\nHuman: a\n\nAssistant: b",
                                                   "rejected": "\n\nHuman: a\n\nAssistant: c"},
                                                  {"chosen": "\n\nHuman: a\n\nAssistant: b"}])
    with pytest.raises(BenchmarkFormatError) as err:
        detect_benchmarks([path])
    assert "pairs.jsonl, line 2: missing field 'rejected'" in str(err.value)
    assert "expected both 'chosen' and 'rejected'" in str(err.value)


def test_unknown_score_field_lists_the_fields(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [{"conversation": conv(0), "score": 1}])
    with pytest.raises(BenchmarkFormatError, match=r"unknown score field 'helpfulness'.*conversation, score"):
        detect_benchmarks([path], score_field="helpfulness")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    with pytest.raises(BenchmarkFormatError, match=r"empty\.jsonl: the file is empty"):
        detect_benchmarks([path])


def test_unknown_shape_asks_for_the_kind(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "what.jsonl", [{"text": "hello"}])
    with pytest.raises(BenchmarkFormatError, match="cannot tell the benchmark kind"):
        detect_benchmarks([path])


def test_bundled_samples_are_detected() -> None:
    samples = Path(__file__).resolve().parents[2] / "assets" / "samples"
    found = {b.name: b for b in detect_benchmarks([samples])}
    assert {n: (b.kind, b.precomputed, b.n) for n, b in found.items()} == {
        "hh_rlhf_helpful_20": (PAIRWISE, False, 20),
        "helpful_smollm2": (PAIRWISE, True, 10),
        "mt_bench_ratings_24": (RATING, False, 24),
        "arena_hard_mini_ranking": (RANKING, False, 18),
    }
    assert found["helpful_smollm2"].categories == ("correctness", "relevance")
    assert all(b.n_invalid == 0 for b in found.values())


def test_a_lone_file_named_accepted_is_read_by_its_fields(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "accepted_answers.jsonl", [{"conversation": conv(0), "score": 4}])
    (b,) = detect_benchmarks([path])
    assert b.kind == RATING


def test_odd_utterance_lists_are_kept_with_a_visible_warning(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [
        {"conversation": ["Hello! How can I help?", "q", "a"], "score": 1},
        {"conversation": conv(1), "score": 2}])
    (b,) = detect_benchmarks([path])
    assert b.n_invalid == 0
    assert b.frame[COL_CONVERSATION][0].utterances == ("q", "a")
    assert any("1 conversation(s) read with a warning" in w and "r.jsonl, line 1" in w
               for w in b.warnings)


def test_csv_cells_may_hold_long_conversations(tmp_path: Path) -> None:
    long_reply = "word " * 40_000  # 200 KB, over the csv module's default cell limit
    pd.DataFrame([{"prompt": "q", "response": long_reply, "model": "a"},
                  {"prompt": "q", "response": "short", "model": "b"}]).to_csv(tmp_path / "r.csv", index=False)
    (b,) = detect_benchmarks([tmp_path / "r.csv"])
    assert b.kind == RANKING and b.frame[COL_CONVERSATION][0].reply == long_reply
