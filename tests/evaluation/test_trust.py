"""Numbers users can trust: each way rows could silently enter the metrics wrongly, on a small
adversarial file, with the fake scorer or precomputed values (no model)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core.engine.config import ScoringConfig
from core.engine.followups import followups_from_mapping
from core.errors import BenchmarkFormatError
from core.evaluation.detect import detect_benchmarks
from core.evaluation.elo import EloTable, default_elo, match_models
from core.evaluation.report import EvaluationReport
from core.evaluation.runner import EvaluationOptions, run_evaluation
from core.names import COL_CONVERSATION, COL_ERROR, COL_MODEL
from tests.fakes import FakeScorer

CONFIG = ScoringConfig(model="fake")
FOLLOWUPS = followups_from_mapping({"relevance": {"positive": ["Great."], "negative": ["Bad."]}})


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def evaluate(paths, value=None, **options) -> dict:
    benchmarks = detect_benchmarks(paths, drop_duplicates=options.pop("drop_duplicates", False))
    report = run_evaluation(benchmarks, scorer_factory=lambda: FakeScorer(CONFIG, value), config=CONFIG,
                            followups=FOLLOWUPS, cache_path=None,
                            options=EvaluationOptions(bootstrap_samples=200, **options))
    return report.to_dict()


def good_is_better(text: str) -> float:
    return 1.0 if "good" in text else 0.0


# ----------------------------------------------------------------------------- misaligned pairs

def test_a_pair_answering_different_prompts_is_skipped_with_row_and_reason(tmp_path: Path) -> None:
    accept = [{"conversation": [f"question {i}", f"good {i}"]} for i in range(5)]
    reject = [{"conversation": [f"question {i}", f"bad {i}"]} for i in range(5)]
    reject[3]["conversation"][0] = "another question"
    paths = [write_jsonl(tmp_path / "x_accept.jsonl", accept), write_jsonl(tmp_path / "x_reject.jsonl", reject)]
    (b,) = evaluate(paths, good_is_better)["benchmarks"]
    assert b["n"] == 4 and b["metrics"]["accuracy"] == 1.0
    (skip,) = b["skipped"]
    assert skip["row"] == 3 and "different conversations" in skip["reason"]


def test_files_in_another_order_are_an_error_saying_they_are_not_aligned(tmp_path: Path) -> None:
    accept = [{"conversation": [f"question {i}", f"good {i}"]} for i in range(6)]
    reject = [{"conversation": [f"question {i}", f"bad {i}"]} for i in reversed(range(6))]
    paths = [write_jsonl(tmp_path / "x_accept.jsonl", accept), write_jsonl(tmp_path / "x_reject.jsonl", reject)]
    with pytest.raises(BenchmarkFormatError, match="not aligned"):
        detect_benchmarks(paths)


# ----------------------------------------------------------------------------- ELO versions

def test_elo_matching_never_crosses_versions_or_dates() -> None:
    table = EloTable("t", {"Mistral-7B-Instruct-v0.2": 1073.0, "Mixtral-8x7B-Instruct-v0.1": 1114.0,
                           "gemini-1.5-pro-api-0514": 1254.0})
    found = {m.model: m for m in match_models(
        ["Mistral-7B-Instruct-v0.1", "mixtral-8x7b-instruct-v0.2", "gemini-1.5-pro-api-0409"], table)}
    assert all(m.elo_name is None for m in found.values())
    assert found["Mistral-7B-Instruct-v0.1"].hint == "Mistral-7B-Instruct-v0.2"
    (m,) = match_models(["gemini-1.5-pro-api-0409"], default_elo())  # the bundled table's 0514
    assert m.elo_name is None and m.hint == "gemini-1.5-pro"


def test_two_dated_variants_each_match_their_own_entry() -> None:
    table = EloTable("t", {"gemini-1.5-pro-api-0409": 1.0, "gemini-1.5-pro-api-0514": 2.0})
    found = {m.model: m.elo_name for m in match_models(["Gemini-1.5-Pro-API-0409", "gemini-1.5-pro-api-0514"], table)}
    assert found == {"Gemini-1.5-Pro-API-0409": "gemini-1.5-pro-api-0409",
                     "gemini-1.5-pro-api-0514": "gemini-1.5-pro-api-0514"}


def test_unmatched_model_gets_a_hint_and_a_manual_map_fixes_it(tmp_path: Path) -> None:
    rows = [{"model": m, "prompt": f"q{i}", "response": f"{m} answer {i}" + "!" * k}
            for k, m in enumerate(["a-v1", "b", "c", "d"]) for i in range(3)]
    path = write_jsonl(tmp_path / "rank.jsonl", rows)
    elo = EloTable("t", {"a-v2": 1.0, "b": 2.0, "c": 3.0, "d": 4.0})
    (b,) = evaluate([path], elo=elo)["benchmarks"]
    assert b["unmatched_models"] == ["a-v1"]
    assert any("did you mean a-v2" in w for w in b["warnings"])
    (b,) = evaluate([path], elo=elo, elo_map={"a-v1": "a-v2"})["benchmarks"]
    assert b["unmatched_models"] == [] and b["metrics"]["n_matched"] == 4


# ----------------------------------------------------------------------------- non-finite values

def test_non_finite_values_leave_the_row_out_of_every_signal(tmp_path: Path) -> None:
    def entries(side: str, values: list) -> list:
        return [{"conversation": [f"q{i}", f"{side} {i}" + "!" * i], "positive": [v], "negative": [0.0]}
                for i, v in enumerate(values)]
    nan, inf = float("nan"), float("inf")
    accept = entries("accept", [1.0, nan, 1.0, 1.0])
    reject = entries("reject", [0.0, 0.0, inf, 0.0])
    text = lambda rows: "".join(json.dumps(r) + "\n" for r in rows)  # noqa: E731 (NaN as JSON allows)
    (tmp_path / "p_accept_relevance.jsonl").write_text(text(accept))
    (tmp_path / "p_reject_relevance.jsonl").write_text(text(reject))
    (b,) = evaluate([tmp_path])["benchmarks"]
    assert b["n"] == 2 and [s["row"] for s in b["skipped"]] == [1, 2]
    assert all("not finite" in s["reason"] for s in b["skipped"])
    for figures in [b["metrics"], *b["baselines"].values(), *b["per_category"].values()]:
        assert figures["n"] == 2


def test_a_baseline_missing_on_some_rows_is_left_out_not_computed_on_a_subset(tmp_path: Path) -> None:
    def entries(side: str) -> list:
        return [{"conversation": [f"q{i}", f"{side} {i}"], "positive": [float(side == "accept")],
                 "negative": [0.0]} if i < 2 else {"positive": [float(side == "accept")], "negative": [0.0]}
                for i in range(4)]
    write_jsonl(tmp_path / "p_accept_relevance.jsonl", entries("accept"))
    write_jsonl(tmp_path / "p_reject_relevance.jsonl", entries("reject"))
    (b,) = evaluate([tmp_path])["benchmarks"]
    assert b["n"] == 4 and "length" not in b["baselines"]
    assert "4 of 8" in b["baselines_missing"]["length"]


# ----------------------------------------------------------------------------- subsets vs categories

def test_files_named_like_categories_but_holding_other_rows_are_subsets(tmp_path: Path) -> None:
    for level, n, good in (("easy", 4, 1.0), ("hard", 2, -1.0)):
        for side, value in (("accept", good), ("reject", 0.0)):
            write_jsonl(tmp_path / f"rb_{side}_{level}.jsonl",
                        [{"conversation": [f"{level} q{i}", f"{side} {i}"], "positive": [value],
                          "negative": [0.0]} for i in range(n)])
    found = evaluate([tmp_path])["benchmarks"]
    assert sorted((b["name"], b["n"], b["metrics"]["accuracy"]) for b in found) == [
        ("rb_easy", 4, 1.0), ("rb_hard", 2, 0.0)]


def test_category_files_of_the_same_rows_still_combine(tmp_path: Path) -> None:
    for cat in ("relevance", "correctness"):
        for side in ("accept", "reject"):
            write_jsonl(tmp_path / f"rb_{side}_{cat}.jsonl",
                        [{"conversation": [f"q{i}", f"{side} {i}"], "positive": [1.0], "negative": [0.0]}
                         for i in range(3)])
    (b,) = detect_benchmarks([tmp_path])
    assert b.categories == ("correctness", "relevance")


# ----------------------------------------------------------------------------- small n, summary

def test_five_of_five_has_an_honest_wilson_interval(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "five.jsonl", [{"prompt": f"q{i}", "chosen": f"good {i}",
                                                  "rejected": f"poor {i}"} for i in range(5)])
    report = evaluate([path], good_is_better)
    (b,) = report["benchmarks"]
    assert b["metrics"]["accuracy"] == 1.0 and b["metrics"]["accuracy_interval"] == "wilson"
    assert b["metrics"]["accuracy_ci"][0] == pytest.approx(0.566, abs=1e-3)
    assert report["settings"]["intervals"]["accuracy"].startswith("Wilson")


def test_summary_names_pooled_figure_and_lists_undefined_sets(tmp_path: Path) -> None:
    big = write_jsonl(tmp_path / "big.jsonl", [{"prompt": f"q{i}", "chosen": f"good {i}",
                                                "rejected": f"poor {i}"} for i in range(9)])
    small = write_jsonl(tmp_path / "small.jsonl", [{"prompt": "q", "chosen": "poor a", "rejected": "good b"}])
    constant = write_jsonl(tmp_path / "flat.jsonl", [{"conversation": [f"q{i}", "same"], "score": i}
                                                     for i in range(4)])
    summary = evaluate([big, small, constant], good_is_better)["summary"]
    assert summary["pairwise"]["pooled_accuracy"] == pytest.approx(0.9)
    assert summary["pairwise"]["mean_accuracy"] == pytest.approx(0.5)
    assert "flat" in summary["rating"]["undefined"]


# ----------------------------------------------------------------------------- transcripts, duplicates, CSV

def test_hh_transcript_reply_quoting_a_chat_log_stays_whole(tmp_path: Path) -> None:
    quoted = "Here is a log:\nUser: hi\nAssistant: hello\nSystem: done"
    path = write_jsonl(tmp_path / "hh.jsonl", [{
        "chosen": f"\n\nHuman: Show me a chat log.\n\nAssistant: {quoted}",
        "rejected": "\n\nHuman: Show me a chat log.\n\nAssistant: No."}])
    (b,) = detect_benchmarks([path])
    assert b.n_invalid == 0
    assert b.frame[COL_CONVERSATION][0].reply == quoted
    assert b.frame[COL_CONVERSATION][0].utterances[0] == "Show me a chat log."


def test_duplicates_are_flagged_and_can_be_dropped(tmp_path: Path) -> None:
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"poor {i}"} for i in range(3)]
    path = write_jsonl(tmp_path / "dup.jsonl", rows + [rows[1], rows[1]])
    (b,) = evaluate([path], good_is_better)["benchmarks"]
    assert b["n"] == 5 and any("2 duplicated row(s)" in w and "row 3 repeats row 1" in w for w in b["warnings"])
    (b,) = evaluate([path], good_is_better, drop_duplicates=True)["benchmarks"]
    assert b["n"] == 3 and [s["row"] for s in b["skipped"]] == [3, 4]
    assert "duplicate of row 1" in b["skipped"][0]["reason"]


def test_csv_cells_stay_text_unless_the_field_is_numeric(tmp_path: Path) -> None:
    pd.DataFrame([{"id": "0012", "model": "007", "prompt": "q", "response": "42", "score": "3"},
                  {"id": "0013", "model": "008", "prompt": "q", "response": "[1, 2]", "score": "4.5"},
                  {"id": "0014", "model": "009", "prompt": "q2", "response": "ok", "score": "1"}]
                 ).to_csv(tmp_path / "r.csv", index=False)
    (b,) = detect_benchmarks([tmp_path / "r.csv"])
    assert b.n_invalid == 0
    assert [c.reply for c in b.frame[COL_CONVERSATION]] == ["42", "[1, 2]", "ok"]
    assert list(b.frame[COL_MODEL]) == ["007", "008", "009"]
    assert list(b.frame["truth"]) == [3.0, 4.5, 1.0]
    assert b.frame[COL_ERROR].isna().all()


# ----------------------------------------------------------------------------- RewardBench

def test_rewardbench_subsets_and_section_score(tmp_path: Path) -> None:
    rows = []
    for subset, n, wins in (("alpacaeval-easy", 4, 4), ("mt-bench-hard", 2, 1), ("donotanswer", 2, 0)):
        rows += [{"prompt": f"{subset} {i}", "chosen": ("good" if i < wins else "poor") + f" {i}",
                  "rejected": ("poor" if i < wins else "good") + f" {i}", "subset": subset} for i in range(n)]
    path = write_jsonl(tmp_path / "rb.jsonl", rows)
    report = evaluate([path], good_is_better)
    (b,) = report["benchmarks"]
    assert {k: v["accuracy"] for k, v in b["subsets"].items()} == {
        "alpacaeval-easy": 1.0, "mt-bench-hard": 0.5, "donotanswer": 0.0}
    assert b["subsets"]["mt-bench-hard"]["n"] == 2
    rb = b["rewardbench"]
    assert rb["sections"] == {"Chat": 1.0, "Chat Hard": 0.5, "Safety": 0.0}
    assert rb["score"] == pytest.approx(0.5) and "RewardBench 1" in rb["method"]
    assert b["metrics"]["accuracy"] == pytest.approx(5 / 8)  # pooled, under its own name
    assert report["summary"]["pairwise"]["rewardbench"]["rb"]["score"] == pytest.approx(0.5)


def test_rewardbench2_best_of_n(tmp_path: Path) -> None:
    rows = [
        {"prompt": "a", "chosen": ["good a"], "rejected": ["poor 1", "poor 2", "poor 3"], "subset": "Math"},
        {"prompt": "b", "chosen": ["good b"], "rejected": ["poor 1", "good x", "poor 3"], "subset": "Math"},
        {"prompt": "c", "chosen": ["good c", "good d"], "rejected": ["poor 1"], "subset": "Ties"},
    ]
    path = write_jsonl(tmp_path / "rb2.jsonl", rows)
    (b,) = evaluate([path], good_is_better)["benchmarks"]
    assert b["format"] == "rewardbench2" and b["n"] == 3
    # a: chosen beats all; b: ties with "good x" at the top -> lost; c: both correct above the incorrect
    assert {k: v["accuracy"] for k, v in b["subsets"].items()} == {"Math": 0.5, "Ties": 1.0}
    assert b["rewardbench"]["score"] == pytest.approx(0.75)


# ----------------------------------------------------------------------------- Direct in reports

def test_direct_baseline_is_reported_on_the_same_rows(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": f"q{i}", "chosen": f"good {i}",
                                               "rejected": f"poor {i}"} for i in range(6)])
    (b,) = evaluate([path], good_is_better)["benchmarks"]
    assert b["baselines"]["direct"]["n"] == b["n"] == 6
    assert set(b["outcomes"]) >= {"keys", "flr", "direct", "length"}
    report = EvaluationReport.from_dict(json.loads(json.dumps(evaluate([path], good_is_better))))
    assert "direct" in set(report.metrics_frame()["signal"])


def test_scores_cached_before_direct_existed_are_scored_again(tmp_path: Path) -> None:
    import sqlite3

    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": f"q{i}", "chosen": f"good {i}",
                                               "rejected": f"poor {i}"} for i in range(3)])
    cache = tmp_path / "scores.sqlite"
    made: list[FakeScorer] = []

    def factory() -> FakeScorer:
        made.append(FakeScorer(CONFIG, good_is_better))
        return made[-1]

    def once() -> dict:
        return run_evaluation(detect_benchmarks([path]), scorer_factory=factory, config=CONFIG,
                              followups=FOLLOWUPS, cache_path=cache,
                              options=EvaluationOptions(bootstrap_samples=200)).to_dict()

    first = once()
    with sqlite3.connect(cache) as db:  # make the entries look like an older version's
        for key, value in db.execute("SELECT conversation, value FROM scores").fetchall():
            old = {k: v for k, v in json.loads(value).items() if k != "direct"}
            db.execute("UPDATE scores SET value = ? WHERE conversation = ?", (json.dumps(old), key))
    again = once()
    assert made[-1].conversations == 6  # every reply scored again, not reported without Direct
    assert again["benchmarks"][0]["baselines"]["direct"] == first["benchmarks"][0]["baselines"]["direct"]
    once()
    assert len(made) == 2  # now cached with Direct: no model



def test_a_run_cancelled_before_any_pair_is_scored_reports_no_accuracy_instead_of_crashing(tmp_path: Path) -> None:
    """Every pair skipped (cancelled before the first chunk): judging used to raise KeyError."""
    import threading

    from core.engine.config import ScoringConfig
    from core.engine.followups import default_followups
    from core.evaluation.detect import detect_benchmarks
    from core.evaluation.runner import run_evaluation
    from tests.fakes import FakeScorer

    write_jsonl(tmp_path / "hh.jsonl", [{"chosen": f"\n\nHuman: q{i}\n\nAssistant: good {i}",
                                         "rejected": f"\n\nHuman: q{i}\n\nAssistant: bad"} for i in range(6)])
    cancel = threading.Event()
    cancel.set()
    report = run_evaluation(detect_benchmarks([tmp_path / "hh.jsonl"]), scorer_factory=FakeScorer,
                            config=ScoringConfig(model="fake"), followups=default_followups(),
                            cache_path=None, cancel=cancel)
    (b,) = report.to_dict()["benchmarks"]
    assert report.cancelled and b["metrics"]["n"] == 0 and b["metrics"]["accuracy"] is None
    assert len(b["skipped"]) == 6
