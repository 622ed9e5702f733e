"""`flr finetune`: feedback-layout examples, a LoRA run that learns, the adapter as `--model`,
resuming a killed run. Tiny model, a few steps each."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from core.cli.main import main
from core.engine.config import ScoringConfig
from core.engine.conversation import Conversation
from core.engine.models import load_model
from core.engine.rendering import render
from core.errors import FLRError
from core.training.finetune import FinetuneOptions, feedback_loss, finetune, load_base
from core.training.sft_data import (IGNORE, SourcedTriple, feedback_examples, read_triples,
                                    split_by_question)
from core.mining.feedback_data import FeedbackTriple

TRIPLES = [
    {"question": "What is the capital of France?", "answer": "Paris is the capital of France.",
     "feedback": "Thanks, that is exactly what I needed."},
    {"question": "Write a short poem about the sea.", "answer": "The weather today is sunny.",
     "feedback": "That's not what I asked. Can you answer the question?"},
    {"question": "Could you explain that?", "answer": "Write a short poem about the sky.",
     "feedback": "Could you explain that in simpler words, please?"},
    {"question": "What is the weather today?", "answer": "Sunny with a light breeze.",
     "feedback": "Thanks, that is exactly what I needed."},
]


def _write_jsonl_gz(path: Path, rows: list[dict]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _sourced(rows: list[dict]) -> list[SourcedTriple]:
    return [SourcedTriple(FeedbackTriple(**r), f"test, item {i}") for i, r in enumerate(rows)]


def _options(tiny: Path, **changes) -> FinetuneOptions:
    base = dict(model=str(tiny), device="cpu", max_steps=4, batch_size=2, save_steps=2,
                logging_steps=1, learning_rate=5e-3, lora_rank=8, eval_fraction=0.0)
    return FinetuneOptions(**{**base, **changes})


def test_labels_are_exactly_the_tokens_feedback_mode_scores(tiny_model_dir: Path) -> None:
    loaded = load_model(ScoringConfig(model=str(tiny_model_dir), device="cpu"))
    (example,), skipped = feedback_examples(loaded.tokenizer, _sourced(TRIPLES[:1]), 512)
    t = TRIPLES[0]
    rendered = render(loaded.tokenizer, Conversation((t["question"], t["answer"])), [t["feedback"]],
                      mode="feedback", aggregation="mean", max_length=512)
    (request,) = rendered.requests
    assert skipped == 0 and example.input_ids == request.ids
    trained = [i for i, label in enumerate(example.labels) if label != IGNORE]
    assert trained == [p + 1 for p in request.positions]
    assert loaded.tokenizer.decode([example.labels[i] for i in trained]) == t["feedback"]


def test_held_out_split_is_by_question_across_files() -> None:
    rows = [dict(TRIPLES[i % 4], answer=f"answer {i}") for i in range(40)]
    train, held = split_by_question(_sourced(rows), 0.3)
    assert held and train
    assert not {t.triple.question for t in train} & {t.triple.question for t in held}
    assert split_by_question(_sourced(rows[::-1]), 0.3)[1] != []  # order does not decide it


def test_several_files_and_aliases_mixed_and_a_bad_row_named(tmp_path: Path) -> None:
    a = _write_jsonl_gz(tmp_path / "a.jsonl.gz", TRIPLES[:2])
    b = tmp_path / "b.csv"
    b.write_text("instruction,response,critique\nQ1,A1,F1\nQ2,A2,\n")
    with pytest.raises(FLRError, match=r"b\.csv, row 3: field 'critique' must be non-empty text"):
        read_triples([a, b])
    b.write_text("instruction,response,critique\nQ1,A1,F1\n")
    assert [t.triple.question for t in read_triples([a, b])] == [TRIPLES[0]["question"],
                                                                  TRIPLES[1]["question"], "Q1"]


def test_bad_input_is_one_error_line_from_the_cli(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(TRIPLES[0]) + "\n" + json.dumps({"question": "q", "answer": "a"}) + "\n")
    code = main(["finetune", str(bad), "--output", str(tmp_path / "out"), "--model", str(tiny_model_dir)])
    err = capsys.readouterr().err
    assert code == 2 and "bad.jsonl, line 2: missing field 'feedback'" in err
    assert not (tmp_path / "out").exists()


def test_lora_loss_goes_down_on_a_fixed_batch(tmp_path: Path, tiny_model_dir: Path) -> None:
    from transformers import TrainerCallback

    class Checkpointing(TrainerCallback):  # what the trained model does with its activations
        seen: list[bool] = []

        def on_step_begin(self, args, state, control, model=None, **kwargs):
            self.seen.append(bool(model.is_gradient_checkpointing))

    options = _options(tiny_model_dir, max_steps=12, save_steps=100)
    loaded = load_base(options)
    examples, _ = feedback_examples(loaded.tokenizer, _sourced(TRIPLES), 512)
    before = feedback_loss(loaded.model, examples, loaded.device)
    result = finetune(examples, examples, tmp_path / "out", options, loaded=loaded, callbacks=[Checkpointing()])
    # activations are recomputed, not kept: without it the embedded model at the defaults kept
    # over 23 GB on a CPU and was killed for memory
    assert Checkpointing.seen and all(Checkpointing.seen)
    assert result.eval_loss_before == pytest.approx(before)
    assert result.eval_loss_after < before - 0.1
    assert len(result.losses) == 12 and result.steps == 12
    assert (tmp_path / "out" / "adapter_config.json").is_file()


def test_adapter_folder_scores_through_flr_score(tmp_path: Path, tiny_model_dir: Path) -> None:
    data = _write_jsonl_gz(tmp_path / "t.jsonl.gz", TRIPLES * 3)
    out = tmp_path / "adapter"
    assert main(["finetune", str(data), "--output", str(out), "--model", str(tiny_model_dir),
                 "--max-steps", "4", "--batch-size", "2", "--learning-rate", "0.01",
                 "--device", "cpu"]) == 0
    card = (out / "README.md").read_text()
    assert "Loss curve" in card and "t.jsonl.gz" in card and "steps: 4" in card
    facts = json.loads((out / "flr-training.json").read_text())
    assert facts["steps"] == 4 and facts["loss_curve"] and facts["examples"]["triples"] == 12
    assert json.loads((out / "flr-adapter.json").read_text())["base_model"] == str(tiny_model_dir.resolve())

    conversations = tmp_path / "c.json"
    conversations.write_text(json.dumps([[TRIPLES[0]["question"], TRIPLES[0]["answer"]]]))
    flr = {}
    for name, model in (("base", tiny_model_dir), ("tuned", out)):
        path = tmp_path / f"{name}.jsonl"
        assert main(["score", "--input", str(conversations), "--output", str(path), "--model", str(model),
                     "--mode", "feedback", "--device", "cpu"]) == 0
        flr[name] = json.loads(path.read_text())["flr"]
    assert flr["base"] != flr["tuned"]

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"chosen": f"\n\nHuman: {t['question']}\n\nAssistant: {t['answer']}",
                                           "rejected": f"\n\nHuman: {t['question']}\n\nAssistant: No."})
                               for t in TRIPLES))
    report = tmp_path / "report.json"
    assert main(["evaluate", str(pairs), "--model", str(out), "--mode", "feedback", "--device", "cpu",
                 "--report", str(report), "--no-cache"]) == 0
    evaluated = json.loads(report.read_text())
    assert evaluated["settings"]["model"] == str(out) and evaluated["benchmarks"][0]["n"] == 4
    assert "adapter:" in json.dumps(evaluated["settings"]["provenance"])

    # merged for speed, yet the same model as the unmerged adapter
    import torch
    from peft import PeftModel

    merged = load_model(ScoringConfig(model=str(out), device="cpu"))
    assert merged.identity.startswith(f"adapter:{out.resolve()}:") and "local:" in merged.identity
    base = load_model(ScoringConfig(model=str(tiny_model_dir), device="cpu"))
    unmerged = PeftModel.from_pretrained(base.model, str(out)).eval()
    ids = torch.tensor([merged.tokenizer("Thanks, that is exactly what I needed.").input_ids])
    with torch.no_grad():
        assert torch.allclose(merged.model(ids).logits, unmerged(ids).logits, atol=1e-4)


def test_full_fine_tune_writes_a_model_folder(tmp_path: Path, tiny_model_dir: Path) -> None:
    options = _options(tiny_model_dir, full=True, max_steps=2, learning_rate=1e-3)
    loaded = load_base(options)
    examples, _ = feedback_examples(loaded.tokenizer, _sourced(TRIPLES), 512)
    finetune(examples, [], tmp_path / "full", options, loaded=loaded)
    assert (tmp_path / "full" / "config.json").is_file() and not (tmp_path / "full" / "adapter_config.json").exists()
    assert load_model(ScoringConfig(model=str(tmp_path / "full"), device="cpu")).identity.startswith("local:")


class _Killed(Exception):
    pass


def test_a_killed_run_resumes_from_its_checkpoint(tmp_path: Path, tiny_model_dir: Path) -> None:
    from transformers import TrainerCallback

    class KillAtStep3(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise _Killed()

    options = _options(tiny_model_dir)
    loaded = load_base(options)
    examples, _ = feedback_examples(loaded.tokenizer, _sourced(TRIPLES), 512)
    out = tmp_path / "run"
    with pytest.raises(_Killed):
        finetune(examples, [], out, options, loaded=loaded, callbacks=[KillAtStep3()])
    assert (out / "checkpoints" / "checkpoint-2").is_dir() and not (out / "adapter_config.json").exists()

    lines: list[str] = []
    result = finetune(examples, [], out, options, loaded=load_base(options), report=lines.append)
    assert result.resumed_from and result.resumed_from.endswith("checkpoint-2")
    assert result.steps == 4 and [r["step"] for r in result.losses] == [3, 4]
    assert any(line.startswith("resuming from") for line in lines)
    assert any(line.startswith("step 4/4  loss") and "left ~" in line for line in lines)

    other = _options(tiny_model_dir, learning_rate=1e-4)  # another run's settings: refused
    with pytest.raises(FLRError, match="checkpoints of a different run"):
        finetune(examples, [], out, other, loaded=load_base(other))


_STALLING_FINETUNE = '''
import sys, time
from transformers import TrainerCallback
import core.training.finetune as ft

class StallAfterSave(TrainerCallback):
    """Says when a checkpoint is on disk, then waits to be killed."""
    def on_save(self, args, state, control, **kwargs):
        print(f"saved checkpoint-{state.global_step}", flush=True)
        time.sleep(600)

original = ft.finetune
ft.finetune = lambda *a, **kw: original(*a, **{**kw, "callbacks": [*kw.get("callbacks", ()), StallAfterSave()]})
from core.cli.main import main
sys.exit(main(sys.argv[1:]))
'''


def test_a_finetune_process_killed_after_a_checkpoint_resumes_when_run_again(
        tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    """SIGKILL, not an exception: the process dies right after checkpoint-2 is written; the same
    command run again resumes there and ends with the weights of a run that was never killed."""
    import os
    import signal
    import subprocess
    import sys

    from safetensors.torch import load_file

    data = _write_jsonl_gz(tmp_path / "t.jsonl.gz", TRIPLES * 3)
    def argv(out: Path) -> list[str]:
        return ["finetune", str(data), "--output", str(out), "--model", str(tiny_model_dir), "--max-steps", "4",
                "--batch-size", "2", "--save-steps", "2", "--learning-rate", "0.01", "--eval-fraction", "0",
                "--device", "cpu"]

    script = tmp_path / "stalling_finetune.py"
    script.write_text(_STALLING_FINETUNE)
    out = tmp_path / "killed"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, str(script), *argv(out)], cwd=root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"})
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("saved checkpoint-2"):
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    assert (out / "checkpoints" / "checkpoint-2").is_dir() and not (out / "adapter_config.json").exists()
    assert not (out / "checkpoints" / "checkpoint-4").exists()

    capsys.readouterr()
    assert main(argv(out)) == 0
    printed = capsys.readouterr().out
    assert f"resuming from {out / 'checkpoints' / 'checkpoint-2'}" in printed
    facts = json.loads((out / "flr-training.json").read_text())
    assert facts["steps"] == 4 and facts["resumed_from"].endswith("checkpoint-2")
    assert facts["examples"]["train"] == 12

    assert main(argv(tmp_path / "whole")) == 0  # the same run, never killed
    resumed = load_file(str(out / "adapter_model.safetensors"))
    whole = load_file(str(tmp_path / "whole" / "adapter_model.safetensors"))
    assert resumed.keys() == whole.keys()
    for key in whole:
        assert resumed[key].allclose(whole[key], atol=1e-5), key
