"""A worker talking to the pure engine, for tests: no database, no server, a fixed clock."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.engine import ConversationState, Effect, step
from bot.flowbook import FlowBook
from bot.messages import InboundEvent, InboundKind, Outbound, OutboundKind


class Chat:
    def __init__(self, book: FlowBook, lang: str | None = "en") -> None:
        self.book = book
        self.state = ConversationState()
        self.transcript: list[Outbound] = []
        self.effects: list[Effect] = []
        self.last: list[Outbound] = []
        self.now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
        self.event(InboundEvent(kind=InboundKind.FOLLOW, language_hint=lang, language_chosen=lang is not None))

    def event(self, event: InboundEvent) -> list[Outbound]:
        result = step(self.state, event, self.now, self.book)
        self.state = result.state
        self.last = result.outbound
        self.transcript += result.outbound
        self.effects += result.effects
        return result.outbound

    def say(self, text: str) -> list[Outbound]:
        return self.event(InboundEvent(kind=InboundKind.TEXT, text=text))

    def press(self, *option_ids: str) -> list[Outbound]:
        return self.event(InboundEvent(kind=InboundKind.CHOICE, choice_ids=list(option_ids)))

    @property
    def question(self) -> str | None:
        """The question the bot is waiting for, as the last message that asked something shows it."""
        asked = [o for o in self.last if o.question]
        return asked[-1].question if asked else None

    @property
    def asking(self) -> Outbound:
        return [o for o in self.last if o.question][-1]

    def result(self) -> Outbound:
        return [o for o in self.transcript if o.kind is OutboundKind.RESULT][-1]

    def effects_of(self, kind: str) -> list[dict[str, Any]]:
        return [e.data for e in self.effects if e.type == kind]

    def word(self, intent: str) -> str:
        return self.book.keywords[intent][self.state.language][0]

    def through_onboarding(self) -> None:
        """Agree to the privacy notice and skip the optional questions, as many workers do."""
        assert self.question == "consent"
        self.press("agree")
        for step_id in ("employer_code", "residence_status", "prefecture"):
            assert self.question == step_id
            self.press("skip")
        assert self.question == "Q1"

    def safe_sheet(self) -> None:
        """Answers every question the safe way: nothing checked, no fee, yes where yes is safe."""
        for q in self.book.questions:
            assert self.question == q.id, (self.question, q.id)
            if q.type == "checklist":
                self.press("none")
            elif q.type == "amount":
                self.say("0")
            elif q.type == "free_text":
                self.press("skip")
            else:
                safe = "no" if q.risk_answer == "yes" or q.id == "Q13" else "yes"
                self.press(safe)
