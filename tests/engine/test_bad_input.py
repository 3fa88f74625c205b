"""Whatever arrives at any question (empty, huge, emoji, another script, control characters) gets a calm
re-ask or a valid answer, never a crash, and never a half-changed state."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.messages import InboundEvent, InboundKind
from tests.chat import Chat

STEPS = ["language", "consent", "employer_code", "residence_status", "prefecture"] + [f"Q{i}" for i in range(1, 14)]

nasty_text = st.one_of(
    st.just(""),
    st.just(" \t\n "),
    st.text(min_size=5000, max_size=5000),
    st.text(alphabet=st.sampled_from("😀🙏💀🔥❤️👍🏽🇻🇳"), min_size=1, max_size=30),
    st.text(alphabet=st.characters(categories=["Cc", "Cf"]), min_size=1, max_size=50),
    st.sampled_from(["Tôi không hiểu", "我不知道这个", "ကျေးဇူးပါ", "Não entendi", "¿Qué?", "ไม่เข้าใจ", "한국어"]),
    st.text(max_size=300),
)


def chat_at(book, step_id: str) -> Chat:
    chat = Chat(book, None if step_id == "language" else "en")
    if step_id == "language":
        return chat
    answers = {"consent": "agree", "employer_code": "skip", "residence_status": "skip", "prefecture": "skip"}
    while chat.question != step_id:
        current = chat.question
        if current in answers:
            chat.press(answers[current])
        elif current in ("Q1", "Q3", "Q11"):
            chat.press("none")
        elif current == "Q2":
            chat.say("0")
        elif current == "Q12":
            chat.press("skip")
        else:
            chat.press("yes")
    return chat


@pytest.mark.parametrize("step_id", STEPS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=nasty_text)
def test_bad_input_gets_a_reask_or_a_valid_answer_never_a_crash(book, step_id, text):
    chat = chat_at(book, step_id)
    before = chat.state.model_copy(deep=True)
    out = chat.event(InboundEvent(kind=InboundKind.TEXT, text=text))
    assert out, "the worker always gets an answer"
    assert all(o.text.strip() for o in out)
    if chat.question == step_id:
        # Asked again: nothing about the sheet changed.
        assert chat.state.answers == before.answers
        assert chat.state.history == before.history
    else:
        # Understood as an answer, a command or a cry for help: the bot said where it stands.
        assert chat.question or chat.state.paused or any(e.type == "handoff" for e in chat.effects)


@pytest.mark.parametrize("step_id", ["Q1", "Q2", "Q4", "Q12"])
@pytest.mark.parametrize("text", ["", "   ", "x" * 5000, "😀😀😀", "\x00\x07\x1b[31m", "\u202e\u200b"])
def test_the_named_bad_inputs_are_each_asked_again(book, step_id, text):
    chat = chat_at(book, step_id)
    chat.say(text)
    assert chat.question == step_id
    assert step_id not in chat.state.answers


@pytest.mark.parametrize("kind", [InboundKind.MEDIA, InboundKind.LOCATION])
def test_non_text_messages_get_a_polite_reply(book, kind):
    chat = chat_at(book, "Q5")
    chat.event(InboundEvent(kind=kind))
    assert chat.question == "Q5"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.text(max_size=40), max_size=5))
def test_forged_button_ids_never_crash(book, ids):
    chat = chat_at(book, "Q3")
    out = chat.event(InboundEvent(kind=InboundKind.CHOICE, choice_ids=ids))
    assert out


def test_a_step_leaves_the_state_it_was_given_as_it_was(book):
    """The service keeps the state it read until the step's writes are committed (and steps again from it when a
    write loses a race), so a step must never change that object, even when it adds to the sheet's answers."""
    chat = chat_at(book, "Q5")
    given = chat.state
    snapshot = given.model_dump(mode="json")
    chat.press("yes")
    chat.say("menu")
    assert chat.state.model_dump(mode="json") != snapshot, "the worker's answer was recorded"
    assert given.model_dump(mode="json") == snapshot
