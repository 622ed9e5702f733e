"""Recovering the turns of queries rendered by the real chat templates in shared/tokenizers.

Each template renders a conversation (with and without a system prompt) as a policy would: the
prompt with its generation header, then the response, the end-of-turn token and right padding.
The reward server's `split_query` (what `/get_reward` calls) must give back the original turns,
without the template's own default system text and with no special token left in a turn.
"""

from __future__ import annotations


import jinja2
import pytest

from core.serving.templates import split_query, template_of_tokenizer
from tests.real_tokenizers import FOLDERS, TOKENIZERS, copy_tokenizer

TURNS = ["Hi there, can you help?", "Of course! What do you need?", "What is 2+2?"]
RESPONSE = "2+2 is 4."
MERGES_SYSTEM = {"mistral-v02": 0, "mistral-v03": 2}  # user turn a Mistral template writes the system into
DROPS_SYSTEM = {"phi3-mini"}  # the original Phi-3-mini template does not render system messages


@pytest.fixture(scope="module", params=FOLDERS)
def tokenizer(request, tmp_path_factory):
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(copy_tokenizer(request.param, tmp_path_factory.mktemp(request.param)))
    loaded.folder_name = request.param
    return loaded


@pytest.mark.parametrize("system", [None, "Answer in one short sentence."])
@pytest.mark.parametrize("with_prompt", [True, False])
@pytest.mark.parametrize("forced", [False, True])
def test_turns_come_back_from_each_templates_rendering(tokenizer, system, with_prompt, forced):
    name = tokenizer.folder_name
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": role, "content": text} for role, text in zip(["user", "assistant", "user"], TURNS)]
    try:
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except jinja2.TemplateError as error:
        pytest.skip(f"{name}'s template cannot render this conversation: {error}")
    pad = tokenizer.pad_token or tokenizer.eos_token
    query = prompt + RESPONSE + tokenizer.eos_token + pad * 3  # right padding, as trainers send it
    conversation = split_query(query, prompt if with_prompt else None,
                               template_of_tokenizer(tokenizer, name) if forced else None)
    expected = [*TURNS, RESPONSE]
    expected_system = system
    if system and name in MERGES_SYSTEM:
        at = MERGES_SYSTEM[name]
        expected[at] = f"{system}\n\n{expected[at]}"
        expected_system = None
        assert any("system prompt into a user turn" in w for w in conversation.warnings)
    if name in DROPS_SYSTEM:
        expected_system = None
    assert list(conversation.utterances) == expected
    assert conversation.system == expected_system  # never the template's own default text


def test_server_scores_a_gemma_query_and_answers_422_for_a_system_message_gemma_refuses(tmp_path_factory):
    from fastapi.testclient import TestClient

    from core.engine.config import ScoringConfig
    from core.engine.followups import default_followups
    from core.engine.scorer import load_scorer
    from core.serving.server import ServeConfig, create_app
    from tests.engine.test_real_templates import build_model

    if "gemma2-standin" not in FOLDERS:
        pytest.skip(f"no gemma2-standin tokenizer in {TOKENIZERS}")
    scorer = load_scorer(ScoringConfig(model=str(build_model("gemma2-standin", tmp_path_factory)), device="cpu"))
    followups = default_followups()
    messages = [{"role": "user", "content": TURNS[0]}, {"role": "assistant", "content": TURNS[1]}]
    query = scorer.loaded.tokenizer.apply_chat_template(messages, tokenize=False) + "<eos><pad><pad>"
    with TestClient(create_app(scorer, followups, ServeConfig(max_batch_wait_ms=0)),
                    base_url="http://127.0.0.1") as client:
        answer = client.post("/get_reward", json={"query": [query]})
        assert answer.status_code == 200, answer.text
        from core.engine.conversation import from_utterances

        want = scorer.score(from_utterances(TURNS[:2]), followups).flr
        assert answer.json()["rewards"][0] == pytest.approx(want, abs=1e-4)
        refused = client.post("/v1/score", json={"conversations": [[
            {"role": "system", "content": "Be brief."}, *messages]]})
        assert refused.status_code == 422
        assert "--system-policy fold" in refused.text and "turn 1 (the system message)" in refused.text
        assert client.post("/get_reward", json={"query": [query]}).status_code == 200  # still serving
