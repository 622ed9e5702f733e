"""Batch and Dashboards tab handlers on hand-made files whose figures are known, with FakeScorer."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from core.errors import BenchmarkFormatError
from tests.fakes import FakeScorer
from ui.tabs import batch as tab_batch
from ui.tabs import dashboards as tab_dashboards
from ui.settings import AppSettings
from ui.state import AppState

REQUEST = SimpleNamespace(session_hash="test-session")


def no_progress(*args, **kwargs) -> None:
    return None


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def paper_pair(tmp_path) -> list[str]:
    """Precomputed rewards (mean pos - mean neg): accept 1, 1, 1, 0; reject 0, 0, 0, 1 -> accuracy 3/4."""
    conv = ["Hi", "Hello"]
    accept = [{"conversation": conv, "positive": [1.0, 0.0], "negative": [-0.5, -0.5]}] * 3 + [
        {"conversation": conv, "positive": [0.0, 0.0], "negative": [0.0, 0.0]}]
    reject = [{"conversation": conv, "positve": [0.0, 0.0], "negative": [0.0, 0.0]}] * 3 + [
        {"conversation": conv, "positve": [1.0, 1.0], "negative": [0.0, 0.0]}]
    return [str(write_jsonl(tmp_path / "toy_accept_relevance.jsonl", accept)),
            str(write_jsonl(tmp_path / "toy_reject_relevance.jsonl", reject))]


@pytest.fixture
def hh_pairs(tmp_path) -> list[str]:
    """10 transcripts where the chosen reply is always longer: with value = length, accuracy 1."""
    rows = [{"chosen": f"\n\nHuman: question {i}?\n\nAssistant: a long and helpful answer number {i}",
             "rejected": f"\n\nHuman: question {i}?\n\nAssistant: no {i}"} for i in range(10)]
    return [str(write_jsonl(tmp_path / "hh_pairs.jsonl", rows))]


@pytest.fixture
def ratings(tmp_path) -> list[str]:
    """Ratings rising with reply length: with value = length, Spearman 1."""
    rows = [{"conversation": ["Tell me something.", "x" * (10 * (i + 1))], "score": float(i + 1),
             "model": f"m{i % 2}"} for i in range(5)]
    return [str(write_jsonl(tmp_path / "ratings.jsonl", rows))]


def length_value(reply: str) -> float:
    return len(reply) / 1000


def make_state(tmp_path, **fake):
    scorers = []

    def factory(config):
        scorers.append(FakeScorer(config, length_value, **fake))
        return scorers[-1]

    return AppState(AppSettings(work_dir=tmp_path / "work"), factory), scorers


def run(state, files, reports=None, **kw):
    args = dict(kind=tab_batch.AUTO, score_field="", elo_file=None, followups_file=None, limit=None,
                model="embedded", mode="base", aggregation="mean")
    args.update(kw)
    return tab_batch.run(state, files, args["kind"], args["score_field"], args["elo_file"],
                         args["followups_file"], args["limit"], args["model"], args["mode"],
                         args["aggregation"], reports or [], REQUEST, no_progress)


def test_preview_lists_what_was_detected(paper_pair, hh_pairs):
    frame, note = tab_batch.preview(paper_pair + hh_pairs, tab_batch.AUTO, "")
    assert len(frame) == 2
    assert set(frame["kind"]) == {"pairwise"}
    assert list(frame["rows"]) == [4, 10] or sorted(frame["rows"]) == [4, 10]
    assert "To be scored with the model: 10 pairs of hh_pairs" in note
    empty, note = tab_batch.preview([], tab_batch.AUTO, "")
    assert empty.empty and note == ""


def test_precomputed_pairs_need_no_model(tmp_path, paper_pair):
    state, scorers = make_state(tmp_path)
    headline, metrics, summary, skipped, downloads, reports = run(state, paper_pair)
    assert scorers == []  # no model was loaded
    assert "accuracy 0.750" in headline and "no model needed" in headline
    overall = metrics[(metrics["signal"] == "flr") & (metrics["category"] == "overall")]
    assert overall["value"].tolist() == [0.75]
    assert overall["95% CI"].iloc[0].startswith("[")
    names = {Path(p).name for p in downloads}
    assert "REPORT.json" in names and any(n.endswith(".csv") for n in names)
    assert any("accept" in n and n.endswith(".jsonl") for n in names)
    assert len(reports) == 1 and reports[0]["benchmarks"][0]["metrics"]["accuracy"] == 0.75


def test_scored_pairs_use_the_cache_on_the_second_run(tmp_path, hh_pairs):
    state, scorers = make_state(tmp_path)
    headline, metrics, *_ , reports = run(state, hh_pairs)
    assert "accuracy 1.000" in headline
    assert scorers[0].conversations == 20
    headline, *_ , reports = run(state, hh_pairs, reports)
    assert scorers[0].conversations == 20  # nothing rescored
    assert "0 conversation(s) scored, 20 from the cache" in headline
    assert len(reports) == 2


def test_cancel_keeps_what_was_scored_and_a_rerun_resumes(tmp_path, hh_pairs):
    state, scorers = make_state(tmp_path)
    cancelled = []

    def value(reply: str) -> float:
        if not cancelled:  # the visitor presses Cancel while the first chunk is scored
            cancelled.append(tab_batch.cancel_run(state, REQUEST))
        return length_value(reply)

    state.scorers._factory = lambda config: scorers.append(FakeScorer(config, value)) or scorers[-1]
    headline, *_, reports = run(state, hh_pairs)
    assert cancelled[0].startswith("Cancelling")
    assert "Run cancelled" in headline and reports == []  # partial figures stay off the dashboards
    first = scorers[0].conversations
    assert 0 < first < 20
    headline, *_ = run(state, hh_pairs)
    assert "Run cancelled" not in headline and "accuracy 1.000" in headline
    assert scorers[0].conversations == 20  # only the rest was scored
    assert tab_batch.cancel_run(state, REQUEST) == "Nothing is running."


def test_bad_files_give_readable_errors(tmp_path):
    state, _ = make_state(tmp_path)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"chosen": "a"}\n{not json\n', encoding="utf-8")
    with pytest.raises(gr.Error, match="broken.jsonl"):
        tab_batch.preview([str(broken)], tab_batch.AUTO, "")
    with pytest.raises(gr.Error, match="no files"):
        run(state, [])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(gr.Error, match="empty.jsonl"):
        run(state, [str(empty)])


def test_dashboards_draw_session_and_uploaded_reports(tmp_path, paper_pair, ratings):
    state, _ = make_state(tmp_path)
    *_, downloads, reports = run(state, paper_pair + ratings)
    note, rating_update, ranking_update, metric_update, by_bench, by_cat, rating_fig, heat, rank_fig, table = \
        tab_dashboards.draw(reports, [], None, None, "spearman")
    assert metric_update["value"] == "spearman"
    assert "2 benchmark(s) from 1 run(s)" in note
    assert rating_update["choices"] == ["ratings"] or len(rating_update["choices"]) == 1
    flr_bar = [t for t in by_bench.data if t.name == "flr"][0]
    assert list(flr_bar.y) == [0.75]
    assert flr_bar.error_y.array is not None
    annotation = rating_fig.layout.annotations[0].text
    assert "spearman = 1.000" in annotation and "pearson" in annotation
    assert len(rating_fig.data) == 2  # points and trend line
    assert heat.data[0].type == "heatmap"
    assert rank_fig.layout.annotations[0].text.startswith("No ranking")
    report_file = next(p for p in downloads if p.endswith("REPORT.json"))
    note, *figures, _ = tab_dashboards.draw([], [report_file], None, None, "spearman")
    assert "1 uploaded report(s)" in note and list(figures[3].data[0].y) == [0.75]
    assert figures[6].data[0].type == "heatmap"


def test_heatmap_falls_back_to_a_metric_the_reports_have(tmp_path, paper_pair):
    state, _ = make_state(tmp_path)
    *_, reports = run(state, paper_pair)
    _, _, _, metric_update, *_, heat, _, _ = tab_dashboards.draw(reports, [], None, None, "spearman")
    assert metric_update["value"] == "accuracy"  # pairwise only: no correlations to show
    assert list(heat.data[0].y) == ["overall", "relevance"] and heat.data[0].z[0][0] == 0.75


def test_dashboards_reject_a_file_that_is_not_a_report(tmp_path):
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": 1}', encoding="utf-8")
    with pytest.raises(gr.Error, match="notes.json: not an evaluation report"):
        tab_dashboards.draw([], [str(bad)], None, None, "spearman")
    worse = tmp_path / "REPORT.json"
    worse.write_text("{", encoding="utf-8")
    with pytest.raises(gr.Error, match="REPORT.json: not valid JSON"):
        tab_dashboards.draw([], [str(worse)], None, None, "spearman")


def test_no_results_yet():
    note, *_ = tab_dashboards.draw([], [], None, None, "spearman")
    assert note.startswith("No results yet")


def test_zero_gpu_runs_in_chunks_until_done(tmp_path, hh_pairs, monkeypatch):
    """On ZeroGPU each GPU call stops at its time budget; the tab calls again until all is
    scored, and the worker's model is loaded once and reused by every chunk."""
    import time

    from ui import gpu

    def slow(reply: str) -> float:
        time.sleep(0.1)
        return length_value(reply)

    made = []

    def factory(config):
        made.append(FakeScorer(config, slow))
        return made[-1]

    state = AppState(AppSettings(work_dir=tmp_path / "work", gpu_seconds=1, zero_gpu=True), factory)
    chunks = []
    original = gpu.evaluate_chunk
    monkeypatch.setattr(gpu, "evaluate_chunk", lambda *args: chunks.append(args[-1]) or original(*args))
    headline, *_ = run(state, hh_pairs)
    assert len(chunks) >= 2  # 20 conversations at 0.1 s do not fit one call of a 1 s budget
    assert "accuracy 1.000" in headline and "cancelled" not in headline
    assert "20 conversation(s) scored" in headline
    assert len(made) == 1 and made[0].conversations == 20 and state.scorers.loads == 0


def test_zero_gpu_cancel_stops_between_chunks(tmp_path, hh_pairs, monkeypatch):
    """The visitor's cancel never crosses into the GPU call; the tab checks it between chunks."""
    import time

    from ui import gpu

    def slow(reply: str) -> float:
        time.sleep(0.1)
        return length_value(reply)

    state = AppState(AppSettings(work_dir=tmp_path / "work", gpu_seconds=1, zero_gpu=True),
                     lambda config: FakeScorer(config, slow))
    chunks = []
    original = gpu.evaluate_chunk

    def chunk_then_cancel(*args):
        chunks.append(args[-1])
        report = original(*args)
        state.cancels.cancel(REQUEST.session_hash)  # the visitor pressed Cancel meanwhile
        return report

    monkeypatch.setattr(gpu, "evaluate_chunk", chunk_then_cancel)
    headline, *_ = run(state, hh_pairs)
    assert len(chunks) == 1 and headline.startswith("### Run cancelled")



def test_elo_map_text_and_drop_duplicates_reach_the_run(tmp_path):
    assert tab_batch.parse_elo_map_text("a-v1 = a-v2\n\nb=c") == {"a-v1": "a-v2", "b": "c"}
    with pytest.raises(BenchmarkFormatError, match="line 1: expected MODEL=ELO_NAME"):
        tab_batch.parse_elo_map_text("just a name")
    rows = [{"prompt": f"q{i}", "chosen": f"a {i}", "rejected": f"b {i}"} for i in range(2)]
    path = tmp_path / "dup.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows + rows[:1]))
    frame, _ = tab_batch.preview([str(path)], tab_batch.AUTO, "", "", "", True)
    assert frame.loc[0, "unusable rows"] == 2 and "dropped" in frame.loc[0, "notes"]


def test_dashboards_compare_the_last_two_runs(tmp_path, paper_pair):
    state, _ = make_state(tmp_path)
    *_, reports = run(state, paper_pair)
    *_, reports = run(state, paper_pair, reports)
    table = tab_dashboards.compare_runs(reports, None, None)
    assert list(table["B - A"])[0] == 0.0 and "paired bootstrap" in list(table["note"])[0]


@pytest.mark.parametrize("model, warned", [("embedded", False), ("Qwen/Qwen2.5-72B-Instruct", True)])
def test_zero_gpu_warns_before_a_run_the_daily_quota_will_not_cover(tmp_path, hh_pairs, monkeypatch,
                                                                     model, warned):
    from ui import gpu

    warnings, asked = [], []
    monkeypatch.setattr(tab_batch.gr, "Warning", lambda message, **kw: warnings.append(message))
    original = gpu.evaluate_chunk

    def record(*args):
        asked.append(gpu._chunk_seconds(*args))
        assert not warned or warnings, "the warning comes before the first GPU call"
        return original(*args)

    monkeypatch.setattr(gpu, "evaluate_chunk", record)
    state = AppState(AppSettings(work_dir=tmp_path / "work", zero_gpu=True), FakeScorer)
    headline, *_ = run(state, hh_pairs, model=model)
    assert "20 conversation(s) scored" in headline
    assert bool(warnings) == warned and (not warned or "anonymous visitor" in warnings[0])
    assert all(seconds <= state.settings.gpu_seconds or model != "embedded" for seconds in asked)


def test_an_empty_or_zero_first_n_box_means_every_row(tmp_path, paper_pair):
    """Found in issue 27: after "More options" opens, gradio sends the empty box as 0, which a
    minimum of 1 refused ("Value 0 is less than minimum value 1") before the handler ran."""
    from ui.gradio_app import build_app

    demo = build_app(AppSettings(work_dir=tmp_path / "app"), scorer_factory=FakeScorer)
    [box] = [b for b in demo.blocks.values() if str(getattr(b, "label", "")).startswith("Only the first N")]
    assert box.preprocess(0) == 0 and box.preprocess(None) is None
    state, _ = make_state(tmp_path)
    for limit in (0, None):
        headline, *_ = run(state, paper_pair, limit=limit)
        assert "n = 4" in headline
    with pytest.raises(gr.Error, match="must be 0 or more"):
        run(state, paper_pair, limit=-2)
