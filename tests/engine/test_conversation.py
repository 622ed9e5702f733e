"""Parsing conversations: every accepted input shape, and errors that say where and what."""

from __future__ import annotations

import json

import pytest

from core.engine.conversation import (
    Conversation,
    from_messages,
    from_text,
    from_utterances,
    parse_conversation,
)
from core.errors import ConversationError, InputError


# --- accepted shapes ------------------------------------------------------------------------


def test_utterance_list_is_the_papers_format():
    conv = parse_conversation(["What is 2+2?", "4.", "And 3+3?", "6."])
    assert conv.utterances == ("What is 2+2?", "4.", "And 3+3?", "6.")
    assert conv.system is None
    assert conv.warnings == ()
    assert conv.reply == "6."
    assert conv.last_user == "And 3+3?"
    assert conv.messages() == [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6."},
    ]


def test_odd_utterance_list_drops_the_first_with_a_warning():
    conv = parse_conversation(["Hi! How can I help?", "What is 2+2?", "4."], where="row 7")
    assert conv.utterances == ("What is 2+2?", "4.")
    assert len(conv.warnings) == 1
    warning = conv.warnings[0]
    assert "row 7" in warning
    assert "3 utterances" in warning
    assert "dropped the first" in warning


def test_tuple_of_utterances_is_accepted():
    assert from_utterances(("q", "a")).utterances == ("q", "a")


def test_openai_messages_with_system():
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ]
    conv = parse_conversation(messages)
    assert conv.system == "You are terse."
    assert conv.utterances == ("Capital of France?", "Paris.")
    assert conv.messages() == messages


def test_sharegpt_from_value():
    conv = parse_conversation([
        {"from": "system", "value": "Be kind."},
        {"from": "human", "value": "Hello"},
        {"from": "gpt", "value": "Hi there!"},
    ])
    assert conv.system == "Be kind."
    assert conv.utterances == ("Hello", "Hi there!")


def test_object_with_conversation_or_messages_field():
    assert parse_conversation({"id": 3, "conversation": ["q", "a"]}).utterances == ("q", "a")
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert parse_conversation({"messages": msgs}).utterances == ("q", "a")


def test_user_assistant_prefixed_text():
    text = "User: What is 2+2?\nAssistant: 4.\nUser: Thanks.\nAssistant: You're welcome."
    conv = parse_conversation(text)
    assert conv.utterances == ("What is 2+2?", "4.", "Thanks.", "You're welcome.")


def test_human_assistant_prefixes_case_and_spacing():
    conv = from_text("HUMAN:hello\nassistant :  hi")
    assert conv.utterances == ("hello", "hi")


def test_hh_rlhf_transcript_with_multiline_turns():
    text = (
        "\n\nHuman: Can you give me a recipe?\nSomething quick, please."
        "\n\nAssistant: Sure:\n1. Boil pasta.\n2. Add sauce."
        "\n\nHuman: Thanks!\n\nAssistant: Enjoy your meal."
    )
    conv = parse_conversation(text)
    assert conv.utterances == (
        "Can you give me a recipe?\nSomething quick, please.",
        "Sure:\n1. Boil pasta.\n2. Add sauce.",
        "Thanks!",
        "Enjoy your meal.",
    )


def test_system_prefix_first_in_text():
    conv = from_text("System: Answer in French.\nUser: Hello\nAssistant: Bonjour")
    assert conv.system == "Answer in French."
    assert conv.utterances == ("Hello", "Bonjour")


def test_json_text_of_each_shape():
    assert parse_conversation('["q", "a"]').utterances == ("q", "a")
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert parse_conversation(json.dumps(msgs)).utterances == ("q", "a")
    assert parse_conversation(json.dumps({"conversation": ["q", "a"]})).utterances == ("q", "a")


def test_conversation_passes_through_unchanged():
    conv = Conversation(("q", "a"))
    assert parse_conversation(conv) is conv


def test_with_reply_and_drop_oldest_exchange():
    conv = parse_conversation(["q1", "a1", "q2", "a2"])
    assert conv.with_reply("other").utterances == ("q1", "a1", "q2", "other")
    assert conv.drop_oldest_exchange().utterances == ("q2", "a2")
    with pytest.raises(ConversationError, match="single-exchange"):
        parse_conversation(["q", "a"]).drop_oldest_exchange()


def test_warnings_do_not_affect_equality():
    assert parse_conversation(["greeting", "q", "a"]) == parse_conversation(["q", "a"])


# --- errors ---------------------------------------------------------------------------------


def test_errors_are_value_errors():
    assert issubclass(ConversationError, InputError)
    assert issubclass(ConversationError, ValueError)


@pytest.mark.parametrize("value", ["", "   \n  ", [], ()])
def test_empty_input_is_rejected(value):
    with pytest.raises(ConversationError, match="empty"):
        parse_conversation(value, where="input.jsonl, line 4")


def test_empty_message_is_named_with_where():
    with pytest.raises(ConversationError) as err:
        parse_conversation("", where="input.jsonl, line 4")
    assert str(err.value).startswith("input.jsonl, line 4:")


def test_text_ending_with_user_is_rejected():
    with pytest.raises(ConversationError) as err:
        parse_conversation("User: hi\nAssistant: hello\nUser: how are you?")
    message = str(err.value)
    assert "ending with the assistant's reply" in message
    assert "3 turn(s) ending with the user's" in message


def test_messages_ending_with_user_are_rejected():
    with pytest.raises(ConversationError, match="ending with the user's"):
        from_messages([{"role": "user", "content": "hi"}])


def test_even_utterance_list_cannot_end_with_user():
    with pytest.raises(ConversationError, match="1 utterance"):
        from_utterances(["only a question"])


def test_turns_that_do_not_alternate_are_rejected():
    with pytest.raises(ConversationError) as err:
        from_text("User: a\nUser: b\nAssistant: c")
    message = str(err.value)
    assert "turn 2" in message
    assert "from the user but the assistant was expected" in message


def test_messages_starting_with_assistant_are_rejected():
    with pytest.raises(ConversationError, match="turn 1 is from the assistant"):
        from_messages([{"role": "assistant", "content": "hi"}, {"role": "user", "content": "q"}])


def test_text_before_first_prefix_names_the_line():
    with pytest.raises(ConversationError) as err:
        from_text("\nSome preamble\nUser: q\nAssistant: a", where="paste")
    message = str(err.value)
    assert message.startswith("paste, line 2:")
    assert "before the first role prefix" in message
    assert "User:" in message


def test_text_without_any_prefix_is_rejected():
    with pytest.raises(ConversationError, match="line 1: text before the first role prefix"):
        parse_conversation("just some words")


def test_system_prefix_after_turns_is_rejected_with_its_line():
    with pytest.raises(ConversationError) as err:
        from_text("User: q\nSystem: be nice\nAssistant: a")
    assert "line 2" in str(err.value)
    assert "System:" in str(err.value)


def test_system_message_not_first_is_rejected():
    with pytest.raises(ConversationError, match="message 1: a system message may only come first"):
        from_messages([
            {"role": "user", "content": "q"},
            {"role": "system", "content": "x"},
            {"role": "assistant", "content": "a"},
        ])


def test_empty_judged_reply_is_rejected():
    with pytest.raises(ConversationError, match="reply being judged is empty"):
        parse_conversation("User: q\nAssistant:")
    with pytest.raises(ConversationError, match="reply being judged is empty"):
        parse_conversation(["q", "  "])


def test_unknown_role_is_named():
    with pytest.raises(ConversationError) as err:
        parse_conversation([{"role": "tool", "content": "x"}])
    assert "message 0" in str(err.value)
    assert "'tool'" in str(err.value)


def test_message_without_string_content():
    with pytest.raises(ConversationError, match="message 1 needs a string 'content'"):
        from_messages([{"role": "user", "content": "q"}, {"role": "assistant", "content": None}])


def test_non_string_utterance_is_named():
    with pytest.raises(ConversationError, match="utterance 1 must be a string; got int"):
        parse_conversation(["q", 42])


def test_invalid_json_text_gives_line_and_column():
    with pytest.raises(ConversationError) as err:
        parse_conversation('[\n  "q",\n  "a",\n]', where="box")
    message = str(err.value)
    assert message.startswith("box: looks like JSON but is not valid")
    assert "line 4, column 1" in message


def test_object_without_conversation_field():
    with pytest.raises(ConversationError, match="no 'conversation' or 'messages' field"):
        parse_conversation({"prompt": "q", "answer": "a"})


def test_unsupported_type():
    with pytest.raises(ConversationError, match="got int"):
        parse_conversation(5)


def test_direct_construction_checks_shape():
    with pytest.raises(ConversationError, match="3 utterance\\(s\\) ending with the user's"):
        Conversation(("q", "a", "q2"))
