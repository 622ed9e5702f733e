"""Mine preferences tab: sample replies for a few prompts, score them with FLR, download datasets.

A small demo of the alignment loop on the app's model: by default the model chosen above the
tabs writes the replies (policy) and scores them (scorer), so no second model is loaded. The
prompts box starts with MT-Bench questions bundled in `assets/mine_demo_prompts.json`
(lm-sys/FastChat, Apache-2.0). Handlers are plain functions of (state, inputs...) so tests call
them without a browser; `build` only lays out components and wires them.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING, Any, Callable

import gradio as gr
import pandas as pd

from core.locations import ASSETS_DIR
from core.engine.config import ScoringConfig
from core.errors import ConfigError
from core.engine.followups import FollowupSet, default_followups
from core.mining.mining import MiningConfig
from core.mining.policy import Policy
from core.mining.preferences import ExportConfig, export_preferences, format_summary, samples_frame
from core.names import SAMPLE_FLR, SAMPLE_INDEX, SAMPLE_PROMPT, SAMPLE_PROMPT_ID, SAMPLE_RESPONSE, SAMPLE_ROLE
from core.mining.prompts import MiningPrompt, load_prompts, parse_prompts
from ui import exports, gpu
from ui.context import AppContext
from ui.errors import user_errors
from ui.markdown import code_block
from ui.state import AppState

if TYPE_CHECKING:
    from core.engine.scorer import Scorer

DEMO_PROMPTS = ASSETS_DIR / "mine_demo_prompts.json"
DEMO_COUNT = 3  # prompts pre-filled in the box: small enough for a CPU demo
MAX_PROMPTS = 20  # the tab is a demo; larger runs belong on the CLI (`flr mine`)

PolicyFactory = Callable[[ScoringConfig, "Scorer"], Policy]


def default_policy(config: ScoringConfig, scorer: "Scorer") -> Policy:
    """The scorer's own model when the policy is the same model, else a freshly loaded one."""
    from core.mining.policy import policy_for  # torch only when a model is needed

    return policy_for(config, scorer)


def demo_prompts_text(count: int = DEMO_COUNT) -> str:
    """The first bundled MT-Bench questions, one per line."""
    return "\n".join(p.text for p in load_prompts(DEMO_PROMPTS)[:count])


def read_prompts(text: str | None, upload: str | None) -> list[MiningPrompt]:
    """An uploaded file wins over the box; in the box, one prompt per line (or JSON / JSONL)."""
    if upload:
        prompts = load_prompts(upload)
    else:
        stripped = (text or "").strip()
        if not stripped:
            raise ConfigError("no prompts: write one question per line, or upload a prompt file")
        if stripped[0] in "[{":
            prompts = parse_prompts(stripped, "prompts box")
        else:
            lines = [line.strip() for line in stripped.splitlines() if line.strip()]
            prompts = parse_prompts(json.dumps(lines), "prompts box", "json")
    if len(prompts) > MAX_PROMPTS:
        raise ConfigError(
            f"{len(prompts)} prompts; this demo takes at most {MAX_PROMPTS}. Use "
            "`flr mine --prompts FILE` for larger runs"
        )
    return prompts


def display_frame(frame: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    numeric = frame.select_dtypes("number").columns
    return frame.assign(**{c: frame[c].round(digits) for c in numeric})


def mine_all(state: AppState, config: ScoringConfig, prompts: list[MiningPrompt], followups: FollowupSet,
             mining: MiningConfig, policy_factory: PolicyFactory, progress: Any) -> gpu.Mined:
    """Sample and score in this process (progress per reply) or in one ZeroGPU call."""
    with state.model_slots:
        if state.settings.zero_gpu:
            return gpu.mine_samples(state.factory, policy_factory, config, prompts, followups, mining)
        from core.mining.mining import mine

        scorer = state.scorer(config)
        policy = policy_factory(config, scorer)

        def report(done: int, total: int) -> None:
            progress((done, total), desc="sampling and scoring", unit="replies")

        results = mine(prompts, policy, scorer, followups, mining, None, report)
        return gpu.Mined(list(results), policy.identity, scorer.identity)


def mine_prompts(state: AppState, prompts_text: str, prompts_file: str | None, samples: float,
                 max_new_tokens: float, temperature: float, top_p: float, seed: float, min_margin: float,
                 kto_threshold: float | None, categories: list[str], model: str, mode: str, aggregation: str,
                 progress: gr.Progress = gr.Progress(track_tqdm=True), *,
                 policy_factory: PolicyFactory = default_policy) -> tuple[str, pd.DataFrame, list[str]]:
    """Sample, score and export; returns the summary, the samples table and the download files."""
    prompts = read_prompts(prompts_text, prompts_file)
    mining = MiningConfig(samples=int(samples), seed=int(seed), max_new_tokens=int(max_new_tokens),
                          temperature=float(temperature), top_p=float(top_p))
    export = ExportConfig(min_margin=float(min_margin or 0.0),
                          kto_threshold=None if kto_threshold in (None, "") else float(kto_threshold))
    followups = default_followups().select(list(categories or []))
    config = state.config_for(model, mode, aggregation)
    progress((0, len(prompts) * mining.samples), desc="sampling and scoring", unit="replies")
    mined = mine_all(state, config, prompts, followups, mining, policy_factory, progress)
    results = mined.results
    out_dir = exports.new_folder(state.settings, "mine")
    result = export_preferences(results, out_dir / "datasets", export,
                                {"policy": mined.policy_identity, "scorer": mined.scorer_identity,
                                 **mining.sampling_key()})
    archive = shutil.make_archive(str(out_dir / "flr_mined_datasets"), "zip", out_dir / "datasets")
    files = [archive] + [str(path) for name, path in result.files.items()
                         if name in ("dataset_info", "samples", "summary") or name.endswith("_sharegpt")]
    frame = samples_frame(results, result.selection).sort_values(
        [SAMPLE_PROMPT_ID, SAMPLE_FLR], ascending=[True, False], kind="stable")
    # Reward and role next to the reply, the (repeated) prompt text last, so the table reads
    # without scrolling sideways.
    first = [SAMPLE_PROMPT_ID, SAMPLE_INDEX, SAMPLE_FLR, SAMPLE_ROLE, SAMPLE_RESPONSE]
    frame = frame[first + [c for c in frame.columns if c not in first and c != SAMPLE_PROMPT] + [SAMPLE_PROMPT]]
    summary = code_block(format_summary(result.summary))
    return summary, display_frame(frame), files


def build(ctx: AppContext, policy_factory: PolicyFactory = default_policy) -> None:
    state = ctx.state
    names = list(default_followups().names)
    gr.Markdown(
        "Sample several replies per prompt from the model above (the **policy**), score each with "
        "FLR, and download preference data for LLaMA-Factory: DPO pairs (highest vs lowest FLR), "
        "KTO (each reply tagged desirable or not), SFT (best reply), in alpaca and sharegpt "
        "formats with `dataset_info.json`. For larger runs use `python -m core mine`.",
        elem_classes="flr-note")
    with gr.Row():
        with gr.Column(scale=3):
            prompts_text = gr.Textbox(demo_prompts_text(), lines=5, max_lines=20, label="Prompts",
                                      elem_id="mine-prompts",
                                      info=f"One question per line (or JSON); at most {MAX_PROMPTS}. "
                                           "Pre-filled with MT-Bench questions.")
            prompts_file = gr.File(label="…or upload a prompt file (JSON / JSONL / CSV)", type="filepath",
                                   file_types=[".json", ".jsonl", ".csv"], elem_id="mine-upload", height=110)
        with gr.Column(scale=2):
            samples = gr.Slider(2, 8, value=4, step=1, label="Samples per prompt", elem_id="mine-samples")
            max_new_tokens = gr.Slider(16, 512, value=48, step=16, label="Max new tokens",
                                       elem_id="mine-max-tokens")
            categories = gr.CheckboxGroup(names, value=names, label="Follow-up categories",
                                          elem_id="mine-categories")
            with gr.Accordion("Sampling and export settings", open=False):
                temperature = gr.Slider(0.0, 1.5, value=0.8, step=0.05, label="Temperature (0 = greedy)")
                top_p = gr.Slider(0.05, 1.0, value=0.95, step=0.05, label="Top-p")
                seed = gr.Number(0, precision=0, label="Seed (same seed, same samples)")
                min_margin = gr.Number(0.0, label="DPO minimum margin (best − worst FLR)")
                kto_threshold = gr.Number(None, label="KTO threshold (empty = per-prompt median)")
            run_button = gr.Button("Sample and score", variant="primary", elem_id="mine-button")
    summary = gr.Markdown(elem_id="mine-summary")
    table = gr.Dataframe(label="Sampled replies with their rewards (role: chosen / rejected in the DPO pair)",
                         interactive=False, wrap=True, show_search="filter", elem_id="mine-table",
                         column_widths=["7%", "6%", "8%", "8%", "40%"])
    downloads = gr.File(label="Downloads: all datasets (.zip), dataset_info.json, sharegpt files, "
                              "every sample (JSONL), summary", file_count="multiple", elem_id="mine-downloads")

    @user_errors
    def handler(prompts_text: str, prompts_file: str | None, samples: float, max_new_tokens: float,
                temperature: float, top_p: float, seed: float, min_margin: float, kto_threshold: float | None,
                categories: list[str], model: str, mode: str, aggregation: str,
                progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple[str, pd.DataFrame, list[str]]:
        return mine_prompts(state, prompts_text, prompts_file, samples, max_new_tokens, temperature, top_p,
                            seed, min_margin, kto_threshold, categories, model, mode, aggregation, progress,
                            policy_factory=policy_factory)

    inputs = [prompts_text, prompts_file, samples, max_new_tokens, temperature, top_p, seed, min_margin,
              kto_threshold, categories, *ctx.scoring_inputs]
    run_button.click(user_errors(handler), inputs, [summary, table, downloads], api_name="mine",
                     concurrency_id="model", concurrency_limit=state.settings.concurrency)
