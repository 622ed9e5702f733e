"""The engine on the chat templates and tokenizers users bring (`/work/shared/tokenizers/*`).

Each folder's real tokenizer and template with a random-weight 2-layer Llama of its vocabulary
(hidden size 16: tiny, so a 150k vocabulary still loads in a second). Every follow-up's score is
checked against the definition read independently: one plain forward pass over the
`apply_chat_template` rendering of the conversation plus the follow-up as the next user turn,
the follow-up found in that text by string search (not by the engine's sentinel) and its tokens
taken by the rule in `core.engine.spans` (tokens overlapping its characters).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jinja2
import pytest
import torch

from core.engine.config import ScoringConfig
from core.engine.conversation import Conversation
from core.engine.followups import followups_from_mapping
from core.engine.models import load_model
from core.engine.scorer import FLRScorer
from core.errors import TemplateRefusalError
from tests.real_tokenizers import FOLDERS, TOKENIZERS, copy_tokenizer

TRICKY = [" Thanks!", "\nOk.", "¿Qué? 🤔", "That is wrong.\n", "Could you explain that again, please?"]
FOLLOWUPS = followups_from_mapping({"tricky": {"positive": TRICKY[:3], "negative": TRICKY[3:]}})
CONVERSATIONS = {
    "plain": Conversation(("Hi! What is 2+2?", "2+2 is 4.", "And 3+3?", "That is 6.")),
    "system": Conversation(("Hi! What is 2+2?", "2+2 is 4."), "You are a terse math tutor."),
}


@pytest.fixture(scope="module", params=FOLDERS)
def model_dir(request, tmp_path_factory) -> Path:
    return build_model(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def gemma_dir(tmp_path_factory) -> Path:
    if "gemma2-standin" not in FOLDERS:
        pytest.skip(f"no gemma2-standin tokenizer in {TOKENIZERS}")
    return build_model("gemma2-standin", tmp_path_factory)


def build_model(name: str, tmp_path_factory) -> Path:
    """A folder with the real tokenizer and template of `name` and random tiny weights."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    source = TOKENIZERS / name
    folder = copy_tokenizer(name, tmp_path_factory.mktemp(name))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    vocab = max(int((source / "vocab_size.txt").read_text().split()[0]), len(tokenizer))
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
        tie_word_embeddings=True))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.3)
    model.save_pretrained(folder)
    return folder


def _render_or_skip(tokenizer, messages) -> str:
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False)
    except jinja2.TemplateError as error:
        pytest.skip(f"this template cannot render the conversation: {error}")


def reference(model, tokenizer, conversation: Conversation, followup: str, aggregation: str) -> float:
    text = _render_or_skip(tokenizer, conversation.messages() + [{"role": "user", "content": followup}])
    probe = _render_or_skip(tokenizer, conversation.messages() + [{"role": "user", "content": "\n Zq \n"}])
    written = followup if "\n Zq \n" in probe else followup.strip()  # some templates trim content
    start = text.rindex(written)
    end = start + len(written)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = encoded.input_ids
    mine = [i for i, (a, b) in enumerate(encoded.offset_mapping) if b > a and a < end and b > start]
    assert mine and mine[0] >= 1
    assert written.strip()[:2] in tokenizer.decode(ids[mine[0]:mine[-1] + 1])
    with torch.no_grad():
        logits = model(torch.tensor([ids[:mine[-1] + 1]])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    values = [logprobs[i - 1, ids[i]].item() for i in range(mine[0], mine[-1] + 1)]
    return sum(values) if aggregation == "sum" else sum(values) / len(values)


@pytest.mark.parametrize("aggregation", ["mean", "sum"])
@pytest.mark.parametrize("which", sorted(CONVERSATIONS))
def test_every_followup_equals_one_plain_pass(model_dir, aggregation, which):
    config = ScoringConfig(model=str(model_dir), device="cpu", aggregation=aggregation, batch_size=4)
    scorer = FLRScorer(load_model(config), config)
    conversation = CONVERSATIONS[which]
    tokenizer, model = scorer.loaded.tokenizer, scorer.loaded.model
    expected = [reference(model, tokenizer, conversation, f, aggregation) for f in TRICKY]
    (category,) = scorer.score(conversation, FOLLOWUPS).categories
    got = list(category.positive) + list(category.negative)
    for text, want, have in zip(TRICKY, expected, got):
        assert math.isclose(have, want, abs_tol=1e-4), (model_dir.name, text, have, want)


def test_score_many_equals_one_at_a_time(model_dir):
    config = ScoringConfig(model=str(model_dir), device="cpu", batch_size=3)
    scorer = FLRScorer(load_model(config), config)
    tokenizer = scorer.loaded.tokenizer
    conversations = [CONVERSATIONS["plain"], Conversation(("Tell me a joke.", "No.\n"))]
    for c in conversations:
        _render_or_skip(tokenizer, c.messages() + [{"role": "user", "content": "x"}])
    together = scorer.score_many(conversations, FOLLOWUPS)
    alone = [FLRScorer(load_model(config), config).score(c, FOLLOWUPS) for c in conversations]
    for a, b in zip(together, alone):
        (ca,), (cb,) = a.categories, b.categories
        for x, y in zip(ca.positive + ca.negative, cb.positive + cb.negative):
            assert math.isclose(x, y, abs_tol=1e-4)


def test_a_template_without_a_system_role_refuses_with_a_sentence_and_fold_scores_it(gemma_dir):
    config = ScoringConfig(model=str(gemma_dir), device="cpu")
    scorer = FLRScorer(load_model(config), config)
    with pytest.raises(TemplateRefusalError) as caught:
        scorer.score(CONVERSATIONS["system"], FOLLOWUPS)
    message = str(caught.value)
    assert "turn 1 (the system message)" in message and "--system-policy fold" in message
    assert "System role not supported" in message and "\n" not in message

    folded = scorer.with_config(config.with_changes(system_policy="fold"))
    got = folded.score(CONVERSATIONS["system"], FOLLOWUPS).categories[0]
    by_hand = Conversation(("You are a terse math tutor.\n\nHi! What is 2+2?", "2+2 is 4."))
    want = scorer.score(by_hand, FOLLOWUPS).categories[0]
    assert got.positive + got.negative == pytest.approx(want.positive + want.negative, abs=1e-5)
    dropped = scorer.with_config(config.with_changes(system_policy="drop"))
    got = dropped.score(CONVERSATIONS["system"], FOLLOWUPS).categories[0]
    want = scorer.score(Conversation(("Hi! What is 2+2?", "2+2 is 4.")), FOLLOWUPS).categories[0]
    assert got.positive + got.negative == pytest.approx(want.positive + want.negative, abs=1e-5)


def test_flr_score_skips_the_refused_row_with_its_reason_and_scores_the_others(gemma_dir, tmp_path, capsys):
    from core.cli.main import main

    convs = tmp_path / "convs.jsonl"
    convs.write_text(json.dumps(["Hi", "Hello!"]) + "\n"
                     + json.dumps([{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": "2+2?"},
                                   {"role": "assistant", "content": "4"}]) + "\n"
                     + json.dumps(["Bye", "See you."]) + "\n")
    out = tmp_path / "scores.jsonl"
    code = main(["score", "--input", str(convs), "--output", str(out), "--model", str(gemma_dir),
                 "--device", "cpu"])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert code == 2
    assert "flr" in rows[0] and "flr" in rows[2] and "flr" not in rows[1]
    assert "--system-policy fold" in rows[1]["error"]
    err = capsys.readouterr().err
    assert "item 2: turn 1 (the system message)" in err and "Traceback" not in err
    code = main(["score", "--input", str(convs), "--output", str(out), "--model", str(gemma_dir),
                 "--device", "cpu", "--system-policy", "fold"])
    assert code == 0 and all("flr" in json.loads(line) for line in out.read_text().splitlines())


def test_system_policy_from_the_environment_and_refused_when_unknown():
    from core.errors import ConfigError

    assert ScoringConfig.from_env({"FLR_SYSTEM_POLICY": "fold"}).system_policy == "fold"
    assert ScoringConfig.from_env({}).scoring_key() == ScoringConfig().scoring_key()
    with pytest.raises(ConfigError, match="FLR_SYSTEM_POLICY: system policy must be one of keep, fold, drop"):
        ScoringConfig.from_env({"FLR_SYSTEM_POLICY": "merge"})


@pytest.mark.parametrize("which", sorted(CONVERSATIONS))
def test_slow_tokenizer_rule_without_offsets_gives_the_same_tokens(model_dir, which):
    """The fallback for tokenizers without offsets, on the real tokenizers: same span as offsets."""
    from transformers import AutoTokenizer

    from core.engine import spans

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    for followup in TRICKY:
        messages = CONVERSATIONS[which].messages() + [{"role": "user", "content": followup}]
        text = _render_or_skip(tokenizer, messages)
        chars = spans._char_span(tokenizer, messages, len(messages) - 1, None, text)
        assert chars is not None
        by_offsets = spans._span_by_offsets(tokenizer, text, chars, False)
        by_prefixes = spans._span_by_prefixes(tokenizer, text, chars, False)
        assert by_prefixes == by_offsets, (model_dir.name, followup)


def test_the_character_cut_of_a_long_exchange_keeps_every_request(model_dir, monkeypatch):
    """A last exchange far longer than the context is cut by characters before the follow-ups
    are rendered (`core.engine.truncation.cut_characters`); on each real tokenizer and template
    the requests are the ones rendering everything in full gives."""
    from transformers import AutoTokenizer

    from core.engine.rendering import render
    from tests.engine.test_truncation import (LONG, LONG_FOLLOWUPS, assert_same_rendering,
                                              without_character_cut)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    for name, conv in sorted(LONG.items()):
        try:
            _render_or_skip(tokenizer, conv.messages() + [{"role": "user", "content": "x"}])
        except pytest.skip.Exception:
            continue  # this template refuses it (no system role): nothing to compare

        def call(conv=conv):
            return render(tokenizer, conv, LONG_FOLLOWUPS, mode="base", aggregation="mean",
                          max_length=300)

        expected = without_character_cut(monkeypatch, call)
        # (a template may leave the system message out, as phi3-mini's does)
        assert expected.dropped_tokens > 500 or conv.system, (model_dir.name, name)
        assert_same_rendering(call(), expected)
