"""Rendered queries split back into turns, for every template the server recognises."""

from __future__ import annotations

import pytest

from core.serving.templates import (TEMPLATES, QueryFormatError, recognise, split_query,
                                    template_named, template_of_tokenizer)

# (prompt with generation header, response) as each template renders user "Hi there" + reply "Hello!"
RENDERED = {
    "chatml": ("<|im_start|>system\nBe nice.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n"
               "<|im_start|>assistant\n", "Hello!<|im_end|>"),
    "llama3": ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe nice.<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\n", "Hello!<|eot_id|>"),
    "mistral": ("<s>[SYSTEM_PROMPT]Be nice.[/SYSTEM_PROMPT][INST] Hi there [/INST]", " Hello!</s>"),
    "gemma": ("<bos><start_of_turn>system\nBe nice.<end_of_turn>\n<start_of_turn>user\nHi there<end_of_turn>\n"
              "<start_of_turn>model\n", "Hello!<end_of_turn>\n"),
    "phi3": ("<|system|>\nBe nice.<|end|>\n<|user|>\nHi there<|end|>\n<|assistant|>\n",
             "Hello!<|end|>\n<|endoftext|>"),
    "plain": ("System: Be nice.\n\nHuman: Hi there\n\nAssistant:", " Hello!"),
}


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_each_template_splits_with_and_without_the_prompt(name):
    prompt, response = RENDERED[name]
    assert recognise(prompt + response) is TEMPLATES[name]
    for given in (prompt, None):
        conversation = split_query(prompt + response, given)
        assert conversation.utterances == ("Hi there", "Hello!")
        assert conversation.system == "Be nice."


def test_multi_turn_chatml_keeps_every_turn():
    query = ("<|im_start|>user\nA<|im_end|>\n<|im_start|>assistant\nB<|im_end|>\n"
             "<|im_start|>user\nC<|im_end|>\n<|im_start|>assistant\nD<|im_end|>\n<|endoftext|><|endoftext|>")
    assert split_query(query).utterances == ("A", "B", "C", "D")


def test_the_prompt_marks_where_a_header_like_response_starts():
    prompt = "Human: Say a dialogue line.\n\nAssistant:"
    response = " Sure.\n\nHuman: is this a trick?"  # an HH-RLHF marker itself (issue 22)
    assert split_query(prompt + response, prompt).reply == "Sure.\n\nHuman: is this a trick?"
    with pytest.raises(QueryFormatError):  # without the prompt the fake turn breaks the alternation
        split_query(prompt + response)


def test_a_plain_query_is_split_only_at_hh_markers():
    """A line of the response that starts `Human:` / `User:` is not a turn of an HH-RLHF query,
    with or without the prompt (issue 22: as `flr score` reads the same text)."""
    prompt = "Human: Say a dialogue line.\n\nAssistant:"
    response = " Sure.\nHuman: is this a trick?\nUser: no"
    for given in (prompt, None):
        conversation = split_query(prompt + response, given)
        assert conversation.utterances == ("Say a dialogue line.", "Sure.\nHuman: is this a trick?\nUser: no")


def test_an_empty_response_is_scored_not_rejected():
    prompt = RENDERED["chatml"][0]
    assert split_query(prompt + "<|im_end|>", prompt).reply == ""


def test_unrecognised_and_forced_templates_are_reported():
    with pytest.raises(QueryFormatError, match=r"query 3: matches no known chat template.*ChatML"):
        split_query("just some text", None, None, "query 3")
    with pytest.raises(QueryFormatError, match="llama3 template"):
        split_query("".join(RENDERED["chatml"]), None, TEMPLATES["llama3"])
    with pytest.raises(QueryFormatError, match="neither a known template"):
        template_named("/nonexistent/model-folder")


def test_a_model_folder_names_its_template(tiny_model_dir):
    from transformers import AutoTokenizer

    assert template_named(str(tiny_model_dir)) is TEMPLATES["chatml"]
    assert template_of_tokenizer(AutoTokenizer.from_pretrained(tiny_model_dir)) is TEMPLATES["chatml"]
