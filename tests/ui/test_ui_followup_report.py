"""Dashboards tab, follow-up diagnostics: heatmap, sortable table, flags, from labelled files."""

from __future__ import annotations

import json

import plotly.graph_objects as go

from tests.tuning.synthetic import SET, WRONG_WAY, SignalScorer, write_pairs
from ui.tabs.dashboards_followups import followup_diagnostics
from ui.settings import AppSettings
from ui.state import AppState


def test_diagnostics_section_draws_heatmap_and_flags(tmp_path):
    state = AppState(AppSettings(work_dir=tmp_path), lambda config: SignalScorer())
    data = write_pairs(tmp_path / "pairs.jsonl", prompts=40, per_prompt=2, seed=8)
    followups = tmp_path / "set.json"
    followups.write_text(json.dumps(SET.to_dict()))
    summary, heatmap, table = followup_diagnostics(state, [str(data)], str(followups), "pairwise", None,
                                                   "embedded", "base", "mean")
    assert "suggested pruned set" in summary
    assert isinstance(heatmap, go.Figure) and heatmap.data[0].z.shape == (16, 16)
    assert len(table) == 16
    assert "wrong way" in table.loc[table["follow-up"] == WRONG_WAY, "flags"].item()
