"""Batch evaluation: golden metrics, the cache (no rescoring, no model load), resume after a
crash, skipped rows, exports and the `evaluate` command."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

from core.cli import evaluate as evaluate_cli
from core.evaluation.detect import detect_benchmarks
from core.engine.config import ScoringConfig
from core.evaluation.elo import EloTable
from core.evaluation.report import EvaluationReport
from core.evaluation.runner import EvaluationOptions, run_evaluation
from core.engine.followups import followups_from_mapping
from tests.fakes import FakeScorer

CONFIG = ScoringConfig(model="fake")
FOLLOWUPS = followups_from_mapping({
    "relevance": {"positive": ["Thanks, on point.", "Exactly."], "negative": ["Off topic.", "Huh?"]},
    "correctness": {"positive": ["Right!"], "negative": ["That is wrong.", "Not true."]},
})


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


class Factory:
    """A scorer factory that records whether it was called and keeps the scorers it made."""

    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs
        self.made: list[FakeScorer] = []

    def __call__(self) -> FakeScorer:
        scorer = FakeScorer(CONFIG, **self.kwargs)
        self.made.append(scorer)
        return scorer


def timeless(report: EvaluationReport) -> dict:
    """The report's JSON without the time it was made (`settings.provenance.created`): the
    only part that may differ between a run and its rerun."""
    data = report.to_dict()
    data["settings"]["provenance"].pop("created")
    return data


def evaluate(benchmarks, factory, cache: Path | None, progress=None, cancel=None, **options) -> EvaluationReport:
    return run_evaluation(benchmarks, scorer_factory=factory, config=CONFIG, followups=FOLLOWUPS,
                          cache_path=cache, options=EvaluationOptions(bootstrap_samples=200, **options),
                          progress=progress, cancel=cancel)


# ----------------------------------------------------------------------------- golden, precomputed

# Category rewards (mean positive - mean negative) per entry, written out by hand:
#   relevance   accept: [-1,-2]/[-3,-4] -> 2 ; [-2,-2]/[-2,-2] -> 0 ; [-1]/[-1,-3] -> 1 ; [-3,-1]/[-1,-1] -> -1
#               reject: 0 ; 1 ; [-1]/[-2] -> 1 ; [-2]/[-1] -> -1
#   -> relevance accuracy: win, loss, tie, tie = (1 + 0 + .5 + .5) / 4 = 0.5
#   correctness accept: 1, 2, 0, 1   reject: 0, 0, 1, 0 -> win, win, loss, win = 0.75
#   overall (mean of the two): accept 1.5, 1, 0.5, 0   reject 0, 0.5, 1, -0.5 -> 0.75
# The two sides of a pair hold one value per follow-up of the same set (equal lengths).
PAPER = {
    ("accept", "relevance"): [([-1, -2], [-3, -4]), ([-2, -2], [-2, -2]), ([-1], [-1, -3]), ([-3, -1], [-1, -1])],
    ("reject", "relevance"): [([-2, -2], [-2, -2]), ([-1, -1], [-2, -2]), ([-1], [-2, -2]), ([-2, -2], [-1, -1])],
    ("accept", "correctness"): [([0], [-1]), ([0, 0], [-2, -2]), ([-1], [-1]), ([-0.5], [-1.5])],
    ("reject", "correctness"): [([-1], [-1]), ([-1, -1], [-1, -1]), ([0], [-1]), ([-2], [-2])],
}


def write_paper_files(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for (side, cat), entries in PAPER.items():
        pos_key = "positve" if side == "reject" else "positive"  # the scripts' spelling too
        write_jsonl(folder / f"golden_{side}_{cat}.jsonl",
                    [{"conversation": [f"question {i}", f"{side} reply {i}" + "!" * i],
                      pos_key: pos, "negative": neg} for i, (pos, neg) in enumerate(entries)])
    return folder


def test_paper_layout_precomputed_metrics_match_the_hand_computation(tmp_path: Path) -> None:
    factory = Factory()
    report = evaluate(detect_benchmarks([write_paper_files(tmp_path / "paper")]), factory, None)
    (b,) = report.to_dict()["benchmarks"]
    assert (b["name"], b["kind"], b["n"]) == ("golden", "pairwise", 4)
    assert abs(b["metrics"]["accuracy"] - 0.75) < 1e-9
    assert abs(b["per_category"]["relevance"]["accuracy"] - 0.5) < 1e-9
    assert abs(b["per_category"]["correctness"]["accuracy"] - 0.75) < 1e-9
    assert len(b["metrics"]["accuracy_ci"]) == 2
    # baselines on the same rows: length (accept replies are never longer) and the one-sided ones
    assert b["baselines"]["length"]["accuracy"] == 0.5  # equal lengths: four ties
    assert set(b["baselines"]) == {"length", "positive only", "negative only"}
    assert factory.made == []  # precomputed: no model


def test_rating_golden_correlations(tmp_path: Path) -> None:
    # FLR per row = x - 0 = 1, 2, 3, 4; scores (judge lists averaged) 1, 3, 2, 4:
    # Pearson = Spearman = 0.8 and Kendall = 2/3 (worked out in test_metrics).
    rows = [{"conversation": [f"q{i}", f"a{i}"], "positive": [float(x)], "negative": [0.0],
             "gpt4_score": judges}
            for i, (x, judges) in enumerate(zip([1, 2, 3, 4], [[1, 1], [2, 4], [2, 2], [4, 4]]))]
    path = write_jsonl(tmp_path / "flask_relevance.jsonl", rows)
    (b,) = evaluate(detect_benchmarks([path]), Factory(), None).to_dict()["benchmarks"]
    assert (b["name"], b["kind"], b["n"]) == ("flask", "rating", 4)
    assert abs(b["metrics"]["pearson"] - 0.8) < 1e-9
    assert abs(b["metrics"]["spearman"] - 0.8) < 1e-9
    assert abs(b["metrics"]["kendall"] - 2 / 3) < 1e-9
    assert b["metrics"]["pearson_p"] is not None


def test_ranking_golden_with_unmatched_model_listed(tmp_path: Path) -> None:
    # model means: model-a (4+2)/2 = 3, Model_B 1, model-c 2; ELO a < b < c:
    # Spearman -0.5, Kendall -1/3 (see test_metrics); model-z has no ELO and is listed.
    values = {"model-a": [4, 2], "Model_B": [1, 1], "model-c": [2, 2], "model-z": [9, 9]}
    rows = [{"conversation": [f"prompt {p}", f"{m} answer"], "model": m, "question_id": p,
             "positive": [float(v[p])], "negative": [0.0]}
            for m, v in values.items() for p in range(2)]
    path = write_jsonl(tmp_path / "wildbench_following.jsonl", rows)
    elo = EloTable("test", {"model-a": 1000, "model-b": 1100, "model-c": 1200, "model-d": 1300})
    report = evaluate(detect_benchmarks([path]), Factory(), None, elo=elo)
    (b,) = report.to_dict()["benchmarks"]
    assert b["kind"] == "ranking"
    assert b["metrics"]["spearman"] == pytest.approx(-0.5, abs=1e-9)
    assert b["metrics"]["kendall"] == pytest.approx(-1 / 3, abs=1e-9)
    assert b["unmatched_models"] == ["model-z"]
    frame = report.ranking_frame("wildbench")
    assert frame.set_index("model").loc["Model_B", "elo model"] == "model-b"
    assert frame.set_index("model").loc["model-a", "flr"] == 3.0


# ----------------------------------------------------------------------------- scoring + cache

def hh_slice(shared_data: Path, tmp_path: Path, n: int = 12) -> Path:
    with gzip.open(shared_data / "hh_rlhf" / "helpful-base-test.jsonl.gz", "rt") as fh:
        lines = [next(fh) for _ in range(n)]
    path = tmp_path / "helpful.jsonl"
    path.write_text("".join(lines))
    return path


def reply_of(transcript: str) -> str:
    """An independent reading of an HH-RLHF transcript: the text after the last Assistant:."""
    return transcript.rsplit("\n\nAssistant:", 1)[1].strip()


def test_hh_accuracy_equals_an_independent_computation(shared_data: Path, tmp_path: Path) -> None:
    path = hh_slice(shared_data, tmp_path)
    length = lambda text: len(text) / 1000.0  # noqa: E731 - FLR ranks replies by length
    report = evaluate(detect_benchmarks([path]), Factory(value=length), None)
    pairs = [json.loads(line) for line in path.read_text().splitlines()]
    wins = [1.0 if len(reply_of(p["chosen"])) > len(reply_of(p["rejected"])) else
            0.5 if len(reply_of(p["chosen"])) == len(reply_of(p["rejected"])) else 0.0 for p in pairs]
    (b,) = report.to_dict()["benchmarks"]
    assert b["n"] == len(pairs)
    assert b["metrics"]["accuracy"] == pytest.approx(sum(wins) / len(wins), abs=1e-12)
    assert b["baselines"]["length"]["accuracy"] == pytest.approx(sum(wins) / len(wins), abs=1e-12)


def test_rerun_uses_the_cache_and_never_loads_the_model(shared_data: Path, tmp_path: Path) -> None:
    benchmarks = detect_benchmarks([hh_slice(shared_data, tmp_path),
                                    shared_data / "ratings" / "mt_bench_prometheus_gpt4.jsonl"])
    cache = tmp_path / "cache" / "scores.sqlite"
    first_factory = Factory()
    first = evaluate(benchmarks, first_factory, cache, limit=10)
    assert first_factory.made[0].conversations == 2 * 10 + 10  # the limit: 10 pairs, 10 rows
    second_factory = Factory()
    second = evaluate(benchmarks, second_factory, cache, limit=10)
    assert second_factory.made == []  # not even constructed
    assert second.stats["scored"] == 0 and second.stats["model_loaded"] is False
    assert timeless(second) == timeless(first)


def test_killed_run_resumes_to_the_identical_report(shared_data: Path, tmp_path: Path) -> None:
    benchmarks = detect_benchmarks([hh_slice(shared_data, tmp_path, n=10)])
    clean = evaluate(benchmarks, Factory(), None)
    cache = tmp_path / "scores.sqlite"
    crashing = Factory(fail_after=11)
    with pytest.raises(RuntimeError, match="stopped after 11"):
        evaluate(benchmarks, crashing, cache, chunk_size=4)
    resumed_factory = Factory()
    resumed = evaluate(benchmarks, resumed_factory, cache, chunk_size=4)
    # two chunks of 4 were committed before the crash in the third: only the rest is scored
    assert resumed_factory.made[0].conversations == 20 - 8
    assert timeless(resumed) == timeless(clean)


def test_unscorable_rows_are_skipped_with_row_and_reason(tmp_path: Path) -> None:
    rows = [{"conversation": [f"q{i}", f"answer {i}"], "score": float(i)} for i in range(6)]
    rows[1]["conversation"] = ["q1", "a1", "a dangling user turn"]  # odd: first dropped, ok
    rows[2]["conversation"] = ["q2", "   "]  # empty reply: loader marks it
    rows[4]["conversation"] = ["q4", "REFUSE me"]  # the engine refuses it
    path = write_jsonl(tmp_path / "rated.jsonl", rows)
    refuse = lambda conv: "too long for the model" if "REFUSE" in conv.reply else None  # noqa: E731
    cache = tmp_path / "scores.sqlite"
    report = evaluate(detect_benchmarks([path]), Factory(reject=refuse), cache)
    (b,) = report.to_dict()["benchmarks"]
    assert b["n"] == 4 and b["skipped_rows"] == 2
    skipped = {s["row"]: s for s in b["skipped"]}
    assert set(skipped) == {2, 4}
    assert "rated.jsonl, line 3" in skipped[2]["reason"] and "empty" in skipped[2]["reason"]
    assert skipped[4]["reason"] == "too long for the model"
    again = Factory(reject=refuse)
    assert timeless(evaluate(detect_benchmarks([path]), again, cache)) == timeless(report)
    assert again.made == []  # the refusal was cached too


def test_cancel_stops_scoring_and_keeps_what_was_scored(shared_data: Path, tmp_path: Path) -> None:
    benchmarks = detect_benchmarks([hh_slice(shared_data, tmp_path, n=8)])
    cancel = threading.Event()
    seen: list[tuple[int, int, str]] = []

    def progress(done: int, total: int, message: str) -> None:
        seen.append((done, total, message))
        if done >= 4:
            cancel.set()

    cache = tmp_path / "scores.sqlite"
    report = evaluate(benchmarks, Factory(), cache, progress=progress, cancel=cancel, chunk_size=4)
    assert report.cancelled and report.to_dict()["cancelled"] is True
    assert report.benchmarks[0].n == 2  # pairs 0 and 1 scored (4 conversations)
    assert seen[-1][:2] == (4, 16)
    rest = Factory()
    evaluate(benchmarks, rest, cache)
    assert rest.made[0].conversations == 12


# ----------------------------------------------------------------------------- exports, round trip

def test_export_round_trips_through_the_paper_layout(shared_data: Path, tmp_path: Path) -> None:
    benchmarks = detect_benchmarks([hh_slice(shared_data, tmp_path, n=6),
                                    shared_data / "ratings" / "mt_bench_prometheus_gpt4.jsonl"])
    report = evaluate(benchmarks, Factory(), None, limit=8)
    written = report.export(tmp_path / "out")
    names = {p.name for p in written}
    assert {"helpful_accept_relevance.jsonl", "helpful_reject_correctness.jsonl", "helpful.csv",
            "mt_bench_prometheus_gpt4_relevance.jsonl", "REPORT.json"} <= names
    reread = detect_benchmarks([p for p in written if p.suffix == ".jsonl"])
    assert all(b.precomputed for b in reread)
    again = evaluate(reread, Factory(), None)
    before = {b.kind: b.metrics for b in report.benchmarks}
    after = {b.kind: b.metrics for b in again.benchmarks}
    assert after["pairwise"]["accuracy"] == pytest.approx(before["pairwise"]["accuracy"], abs=1e-9)
    assert after["rating"]["pearson"] == pytest.approx(before["rating"]["pearson"], abs=1e-9)
    loaded = EvaluationReport.from_dict(json.loads((tmp_path / "out" / "REPORT.json").read_text()))
    assert loaded.metrics_frame().equals(report.metrics_frame())
    assert len(loaded.rating_points("mt_bench_prometheus_gpt4")) == 8


# ----------------------------------------------------------------------------- command line

def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    evaluate_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["evaluate", *argv])
    return args.func(args)


def test_cli_precomputed_files_print_a_table_and_write_the_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_paper_files(tmp_path / "paper")
    report_path = tmp_path / "REPORT.json"
    assert cli([str(folder), "--report", str(report_path), "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "golden" in out and "0.750" in out
    data = json.loads(report_path.read_text())
    assert data["benchmarks"][0]["metrics"]["accuracy"] == 0.75


DECISION = {"requested": "auto", "dtype": "bfloat16", "cpu": "Intel(R) Xeon(R) 8481C (avx2, amx_bf16)",
            "reason": "auto: the CPU multiplies bf16 natively (amx_bf16)"}


def hh_pairs(path: Path, n: int) -> Path:
    """`n` HH-RLHF-style pairs written out here (needs no shared data)."""
    return write_jsonl(path, [{"chosen": f"\n\nHuman: question {i}?\n\nAssistant: a careful answer {i}.",
                               "rejected": f"\n\nHuman: question {i}?\n\nAssistant: no."} for i in range(n)])


def test_the_dtype_decision_goes_into_the_provenance_and_a_cached_rerun_states_it_without_torch(
        tmp_path: Path) -> None:
    path = hh_pairs(tmp_path / "helpful.jsonl", 3)
    cache = tmp_path / "scores.sqlite"
    factory = Factory(dtype_decision=DECISION)
    first = evaluate(detect_benchmarks([path]), factory, cache)
    assert first.to_dict()["settings"]["provenance"]["dtype"] == DECISION and len(factory.made) == 1
    # The rerun, served from the score cache in a fresh process: no model, no torch, same report.
    code = ("import json, sys; from pathlib import Path; from core.evaluation.detect import detect_benchmarks; "
            "from tests.evaluation.test_evaluation import evaluate, timeless; "
            "def factory(): raise AssertionError('the model was loaded'); "
            f"report = evaluate(detect_benchmarks([Path({str(path)!r})]), factory, Path({str(cache)!r})); "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m); "
            "print(json.dumps(timeless(report)))")
    code = code.replace("; def factory(): raise AssertionError('the model was loaded'); ",
                        "\ndef factory(): raise AssertionError('the model was loaded')\n")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == json.loads(json.dumps(timeless(first)))


def test_no_dtype_in_the_provenance_when_nothing_states_one(tmp_path: Path) -> None:
    precomputed = evaluate(detect_benchmarks([write_paper_files(tmp_path / "paper")]), Factory(), None)
    assert "dtype" not in precomputed.to_dict()["settings"]["provenance"]  # nothing was scored
    scored = evaluate(detect_benchmarks([hh_pairs(tmp_path / "helpful.jsonl", 2)]), Factory(), None)
    assert "dtype" not in scored.to_dict()["settings"]["provenance"]  # a scorer that states none


def test_cli_second_run_loads_no_model(shared_data: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[FakeScorer] = []

    def fake_load(config: ScoringConfig) -> FakeScorer:
        made.append(FakeScorer(config))
        return made[-1]

    # the command imports core.engine.scorer only when something needs scoring; a stand-in module
    # keeps torch out of this test
    monkeypatch.setitem(sys.modules, "core.engine.scorer", types.SimpleNamespace(load_scorer=fake_load))
    monkeypatch.setenv("FLR_CACHE_DIR", str(tmp_path / "cache"))
    path = hh_slice(shared_data, tmp_path, n=3)
    argv = [str(path), "--report", str(tmp_path / "r.json"), "--output-dir", str(tmp_path / "rows")]
    assert cli(argv) == 0 and len(made) == 1
    assert (tmp_path / "cache" / "scores.sqlite").is_file()
    assert cli(argv) == 0 and len(made) == 1
    assert (tmp_path / "rows" / "helpful.csv").is_file()


@pytest.mark.parametrize("content, message", [
    ('{"chosen": "x"\n', "bad.jsonl, line 1: malformed JSON"),
    ("", "bad.jsonl: the file is empty"),
])
def test_cli_bad_input_is_one_line_and_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               content: str, message: str) -> None:
    (tmp_path / "bad.jsonl").write_text(content)
    assert cli([str(tmp_path / "bad.jsonl"), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_a_model_answering_a_prompt_twice_keeps_the_plain_mean(tmp_path: Path) -> None:
    rows = [{"conversation": ["p", f"{m} {k}"], "model": m, "question_id": "q1",
             "positive": [float(v)], "negative": [0.0]}
            for m, values in {"model-a": [1, 2, 6], "model-b": [1, 1, 1], "model-c": [2, 2, 2]}.items()
            for k, v in enumerate(values)]
    path = write_jsonl(tmp_path / "dup_following.jsonl", rows)
    elo = EloTable("test", {"model-a": 1300, "model-b": 1000, "model-c": 1100})
    report = evaluate(detect_benchmarks([path]), Factory(), None, elo=elo)
    frame = report.ranking_frame("dup").set_index("model")
    assert frame.loc["model-a", "flr"] == 3.0  # (1 + 2 + 6) / 3
    assert report.benchmarks[0].metrics["spearman"] == pytest.approx(1.0)


def test_a_rerun_with_everything_cached_does_not_import_torch(tmp_path: Path) -> None:
    folder = write_paper_files(tmp_path / "paper")
    code = ("import sys; from core.cli.evaluate import main; "
            f"rc = main([{str(folder)!r}, '--report', {str(tmp_path / 'r.json')!r}, '--no-cache']); "
            "assert rc == 0 and 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_cli_reads_the_one_home_of_kinds_and_metrics() -> None:
    """The CLI's fast path shares core.names with the engine instead of keeping copies."""
    from core import names
    from core.evaluation import metrics

    assert evaluate_cli.KINDS is names.KINDS and evaluate_cli.BASELINES is names.BASELINES
    assert evaluate_cli.METRICS_BY_KIND is names.METRICS_BY_KIND and evaluate_cli.HEADLINE is names.HEADLINE
    assert metrics.BOOTSTRAP_SAMPLES is names.BOOTSTRAP_SAMPLES


def test_identical_rerun_reuses_the_report_and_a_changed_input_does_not(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_paper_files(tmp_path / "paper")
    cache = tmp_path / "cache.sqlite"
    argv = [str(folder), "--cache", str(cache), "--output-dir", str(tmp_path / "out")]
    assert cli(argv) == 0
    first = (tmp_path / "out" / "REPORT.json").read_text()
    assert "reused" not in capsys.readouterr().out
    (tmp_path / "out" / "REPORT.json").unlink()
    assert cli(argv) == 0
    assert "its report was reused" in capsys.readouterr().out
    assert (tmp_path / "out" / "REPORT.json").read_text() == first
    assert (tmp_path / "out" / "golden_accept_relevance.jsonl").is_file()
    # one value changed: a new key, recomputed
    path = folder / "golden_accept_correctness.jsonl"
    path.write_text(path.read_text().replace('"positive": [0]', '"positive": [-5]', 1))
    assert cli(argv) == 0
    assert "reused" not in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "REPORT.json").read_text())["benchmarks"][0]["metrics"]["accuracy"] == 0.5


def test_real_engine_on_the_tiny_model_matches_direct_scoring(tiny_model_dir: Path, shared_data: Path,
                                                               tmp_path: Path) -> None:
    from core.engine.scorer import load_scorer

    config = ScoringConfig(model=str(tiny_model_dir), device="cpu")
    benchmarks = detect_benchmarks([hh_slice(shared_data, tmp_path, n=3)])
    loads: list[object] = []

    def factory():
        loads.append(load_scorer(config))
        return loads[-1]

    cache = tmp_path / "scores.sqlite"
    kwargs = dict(config=config, followups=FOLLOWUPS, cache_path=cache,
                  options=EvaluationOptions(bootstrap_samples=200))
    report = run_evaluation(benchmarks, scorer_factory=factory, **kwargs)
    scorer = loads[0]
    frame = benchmarks[0].frame
    flr = [scorer.score(c, FOLLOWUPS).flr for c in frame["conversation"]]
    wins = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(flr[0::2], flr[1::2])]
    assert report.benchmarks[0].metrics["accuracy"] == pytest.approx(sum(wins) / len(wins))
    again = run_evaluation(benchmarks, scorer_factory=factory, **kwargs)
    assert len(loads) == 1 and timeless(again) == timeless(report)


def test_real_pair_with_an_empty_reply_is_skipped_and_the_rest_evaluated(
        shared_data: Path, tmp_path: Path) -> None:
    # line 121 of the HH-RLHF helpful-base test file has an empty rejected reply
    with gzip.open(shared_data / "hh_rlhf" / "helpful-base-test.jsonl.gz", "rt") as fh:
        lines = [line for i, line in enumerate(fh, start=1) if 118 <= i <= 123]
    path = tmp_path / "helpful.jsonl"
    path.write_text("".join(lines))
    report = evaluate(detect_benchmarks([path]), Factory(), None)
    (b,) = report.to_dict()["benchmarks"]
    assert (b["n"], b["skipped_rows"]) == (5, 1)
    (skip,) = b["skipped"]
    assert skip["row"] == 3 and skip["source"] == "helpful.jsonl, line 4"
    assert "reply being judged is empty" in skip["reason"]
    assert report.skipped_frame().loc[0, "benchmark"] == "helpful"


def test_limit_takes_the_first_pairs(shared_data: Path, tmp_path: Path) -> None:
    factory = Factory()
    report = evaluate(detect_benchmarks([hh_slice(shared_data, tmp_path, n=6)]), factory, None, limit=2)
    assert report.benchmarks[0].n == 2 and factory.made[0].conversations == 4
