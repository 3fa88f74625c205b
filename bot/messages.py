"""What flows between channels and the engine: plain data, no behaviour, no imports of ours."""
from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class InboundKind(StrEnum):
    TEXT = "text"
    CHOICE = "choice"  # a button, postback or callback: carries option ids
    FOLLOW = "follow"  # the worker opened or (re)joined the conversation
    UNFOLLOW = "unfollow"  # the worker blocked or left: we must stop writing
    LOCATION = "location"
    MEDIA = "media"  # image, sticker, audio, file
    NUDGE = "nudge"  # not from the worker: the scheduler asks the bot to write first


class CounsellorHours(BaseModel):
    """When counsellors work, as the service knows it at the moment of the event (the engine has no clock
    of its own and no settings)."""

    open_now: bool
    days: list[int]  # 0 = Monday
    start: str  # "09:00", local time
    end: str


class InboundEvent(BaseModel):
    kind: InboundKind
    text: str = ""
    choice_ids: list[str] = Field(default_factory=list)
    # A language the channel tells us about (profile locale, `--lang`, the web page's picker).
    language_hint: str | None = None
    # True when the worker chose that language themselves, so we need not ask.
    language_chosen: bool = False
    # Filled by the service from the NLU before the engine sees the event.
    detected_language: str | None = None
    # Filled by the service: when counsellors work, for the answer to a request for a person.
    counsellor_hours: CounsellorHours | None = None
    # Filled by the service from the NLU: what the worker wants, and whether the text signals danger.
    intent: str | None = None
    intent_confidence: float | None = None
    danger: bool = False
    # For a NUDGE: which one (reinvite, reminder, followup) and what it is about (the case of a follow-up).
    nudge: str | None = None
    nudge_ref: int | None = None


class OutboundKind(StrEnum):
    TEXT = "text"
    CHOICE = "choice"  # pick exactly one option
    MULTISELECT = "multiselect"  # a checklist: pick any number, or "none"
    QUESTION = "question"  # asks for typed input (amount, free text, code), options are shortcuts
    LINK = "link"
    RESULT = "result"


class Option(BaseModel):
    id: str
    label: str


class Outbound(BaseModel):
    kind: OutboundKind
    text: str
    question: str | None = None  # Q1..Q13 or an onboarding step id, when this asks something
    options: list[Option] = Field(default_factory=list)
    url: str | None = None
    level: str | None = None
    indicators: list[str] = Field(default_factory=list)
    language: str | None = None
    submit_label: str | None = None  # the "Done" of a checklist, for channels that show toggles

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value, "text": self.text, "language": self.language}
        if self.question:
            data["question"] = self.question
        if self.options:
            data["options"] = [{"id": o.id, "label": o.label} for o in self.options]
        if self.submit_label:
            data["submit_label"] = self.submit_label
        if self.url:
            data["url"] = self.url
        if self.kind is OutboundKind.RESULT:
            data["level"] = self.level
            data["indicators"] = self.indicators
        return data
