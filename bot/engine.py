"""The conversation as a pure state machine: `step(state, event, now) -> StepResult(state, outbound, effects)`.

No storage, channel, clock or network here: the service loads the state, passes the time in, and saves what
comes out (the new state, the messages to send and the effects such as a recorded answer or a handoff request)
in one transaction.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field

from bot.amounts import Amount, AmountParser
from bot.flowbook import LANGUAGE_ALIASES, LANGUAGE_NAMES, LANGUAGES, FlowBook, Question, default_flowbook
from bot.messages import CounsellorHours, InboundEvent, InboundKind, Option, Outbound, OutboundKind
from bot.scoring import Score, score
from bot.text import (
    _fold_latin,
    clean,
    contains_any,
    is_meaningful,
    key,
    loose_key,
    matches_any,
    numbered_name_key,
    parse_selection,
    parse_single_number,
)

ONBOARDING = ("language", "consent", "employer_code", "residence_status", "prefecture")
SHEET = tuple(f"Q{i}" for i in range(1, 14))
ORDER = ONBOARDING + SHEET
OPTIONAL_ONBOARDING = ("employer_code", "residence_status", "prefecture")
COMMANDS = ("back", "skip", "stop", "menu", "help", "talk_to_person", "change_language", "delete_data")
INTENT_CONFIDENCE = 0.6  # below this the NLU's guess is not acted on
# At a question the classifier meets answers it was never trained on ("80 man yên", a residence status typed a
# little differently) and has called them "stop" with 0.64-0.89; requests in words score 0.99 and more. Below
# this the worker gets the help and the question again instead of a pause, a handoff or another language.
COMMAND_AT_QUESTION_CONFIDENCE = 0.95
# Keyword lists (keywords.yaml) of the words that answer questions rather than ask for something.
ANSWER_WORDS = frozenset({"yes", "no", "unknown", "none", "agree", "decline", "skip", "back"})
MAX_MESSAGE_CHARS = 2000
DOT_THOUSANDS = ("vi", "id", "pt", "es")  # languages that write 1.000.000
EMPLOYER_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{2,18}[A-Z0-9]")


class ConversationState(BaseModel):
    """Everything the engine remembers about one worker's conversation; stored as JSON after every step."""

    language: str = "en"
    language_confirmed: bool = False
    step: str | None = None  # what the bot is waiting for: an ORDER id, "menu" or "counsellor_offer"
    return_to: str | None = None  # where to go back to after the menu or a language change
    history: list[str] = Field(default_factory=list)
    answers: dict[str, Any] = Field(default_factory=dict)
    raw_answers: dict[str, str] = Field(default_factory=dict)
    consent: bool | None = None
    onboarded: bool = False
    paused: bool = False
    sheet_in_progress: bool = False
    sheets_completed: int = 0
    last_level: str | None = None
    article_ids: list[str] = Field(default_factory=list)  # the articles just offered, in their order
    followup_ref: int | None = None  # the counsellor case a pending "did things get better?" is about


class Effect(BaseModel):
    """Something the service must record besides the messages: it never changes what the worker sees."""

    # profile, answer, sheet_started, sheet_abandoned, sheet_completed, handoff, opt_out, unreachable, erase (the
    # worker confirmed "delete my data": the service erases them after this turn's last message is on its way)
    type: str
    data: dict[str, Any] = Field(default_factory=dict)


class StepResult(BaseModel):
    state: ConversationState
    outbound: list[Outbound]
    effects: list[Effect]


def step(state: ConversationState, event: InboundEvent, now: datetime, book: FlowBook | None = None) -> StepResult:
    turn = _Turn(book or default_flowbook(), _own_copy(state), now)
    turn.handle(event)
    return StepResult(state=turn.s, outbound=turn.out, effects=turn.effects)


def _own_copy(state: ConversationState) -> ConversationState:
    """A copy the turn may change freely. The state is JSON (it is stored as such), so its lists and dicts are
    copied through orjson: pydantic's deep copy took a twentieth of a conversation step."""
    return state.model_copy(update={name: orjson.loads(orjson.dumps(value)) for name, value in state.__dict__.items()
                                    if isinstance(value, (list, dict))})


class _Turn:
    def __init__(self, book: FlowBook, state: ConversationState, now: datetime) -> None:
        self.book = book
        self.s = state
        self.now = now
        self.out: list[Outbound] = []
        self.effects: list[Effect] = []
        self.amounts = _amount_parser(book)
        self.detected_language: str | None = None
        self.event: InboundEvent | None = None

    # ----- saying things -------------------------------------------------------------------------------
    @property
    def lang(self) -> str:
        return self.s.language

    def t(self, text_id: str, **values: object) -> str:
        return self.book.t(text_id, self.lang, **values)

    def say(self, text: str) -> None:
        self.out.append(Outbound(kind=OutboundKind.TEXT, text=text, language=self.lang))

    def number(self, value: float) -> str:
        """A number written the way the worker writes it: 80.000.000 in Vietnamese, 80,000,000 in English."""
        shown = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
        if self.lang in DOT_THOUSANDS:
            shown = shown.replace(",", "\0").replace(".", ",").replace("\0", ".")
        return shown

    def effect(self, type_: str, **data: Any) -> None:
        self.effects.append(Effect(type=type_, data=data))

    def ask(self, step_id: str, intro: list[str] | None = None) -> None:
        """Asks the question of `step_id` and waits for its answer."""
        self.s.step = step_id
        kind, question_id, body, options, hint = self._question(step_id)
        numbered = "\n".join(f"{i}. {o.label}" for i, o in enumerate(options, 1))
        parts = [*(intro or []), body]
        if numbered:
            parts.append(numbered)
        if hint:
            parts.append(hint)
        self.out.append(Outbound(kind=kind, text="\n\n".join(parts), question=question_id, options=options,
                                 language=self.lang,
                                 submit_label=self.t("option_done") if kind is OutboundKind.MULTISELECT else None))

    def _question(self, step_id: str) -> tuple[OutboundKind, str, str, list[Option], str | None]:
        t = self.t
        skip = Option(id="skip", label=t("option_skip"))
        if step_id == "language":
            return (OutboundKind.CHOICE, "language", t("ask_language"),
                    [Option(id=code, label=LANGUAGE_NAMES[code]) for code in LANGUAGES], None)
        if step_id == "consent":
            return (OutboundKind.CHOICE, "consent", t("privacy_notice"),
                    [Option(id="agree", label=t("option_agree")), Option(id="decline", label=t("option_decline"))],
                    None)
        if step_id == "employer_code":
            return OutboundKind.QUESTION, "employer_code", t("ask_employer_code"), [skip], None
        if step_id == "residence_status":
            opts = _listed_options(self.book, "residence_status", self.lang)
            return OutboundKind.CHOICE, "residence_status", t("ask_residence_status"), [*opts, skip], None
        if step_id == "prefecture":
            opts = _listed_options(self.book, "prefecture", self.lang)
            return OutboundKind.CHOICE, "prefecture", t("ask_prefecture"), [*opts, skip], None
        if step_id == "menu":
            return OutboundKind.CHOICE, "menu", t("menu"), self._menu_options(), None
        if step_id == "counsellor_offer":
            return (OutboundKind.CHOICE, "counsellor_offer", t("counsellor_offer"), self._yes_no_options(False),
                    None)
        if step_id == "followup":
            return OutboundKind.CHOICE, "followup", t("ask_followup"), self._followup_options(), None
        if step_id == "erase_confirm":
            return (OutboundKind.CHOICE, "erase_confirm", t("erase_confirm"),
                    [Option(id="erase_yes", label=t("option_erase_yes")),
                     Option(id="erase_no", label=t("option_erase_no"))], None)
        if step_id == "article_question":
            return OutboundKind.QUESTION, "article_question", t("articles_ask"), [
                Option(id="back_to_menu", label=t("option_back_to_menu"))], None
        if step_id == "article_pick":
            library = _library()
            opts = []
            for article_id in self.s.article_ids:
                article = library.get(article_id)
                if article is not None:
                    opts.append(Option(id=f"article:{article_id}", label=article.title(self.lang)))
            return (OutboundKind.CHOICE, "article_pick", t("articles_found"),
                    [*opts, Option(id="back_to_menu", label=t("option_back_to_menu"))], None)
        q = self.book.question(step_id)
        body = f"{t('progress', n=SHEET.index(q.id) + 1)}\n{q.text(self.lang)}"
        if q.type == "checklist":
            opts = [Option(id=i.id, label=i.text(self.lang)) for i in q.items]
            return OutboundKind.MULTISELECT, q.id, body, [*opts, Option(id="none", label=t("option_none"))], \
                t("checklist_hint")
        if q.type == "amount":
            # No numbered shortcut here: "1" must stay an amount, and "I don't know" is understood as typed.
            return OutboundKind.QUESTION, q.id, body, [], t("amount_hint")
        if q.type == "free_text":
            return OutboundKind.QUESTION, q.id, body, [skip], t("free_text_hint")
        return OutboundKind.CHOICE, q.id, body, self._yes_no_options(q.type == "yes_no_unknown"), None

    def _yes_no_options(self, with_unknown: bool) -> list[Option]:
        opts = [Option(id="yes", label=self.t("option_yes")), Option(id="no", label=self.t("option_no"))]
        if with_unknown:
            opts.append(Option(id="unknown", label=self.t("option_unknown")))
        return opts

    def _followup_options(self) -> list[Option]:
        return [Option(id=i, label=self.t(f"option_{i}")) for i in ("better", "same", "worse")]

    def _menu_options(self) -> list[Option]:
        t = self.t
        opts: list[Option] = []
        if self.s.sheet_in_progress or (self.s.return_to in ORDER):
            opts.append(Option(id="continue", label=t("option_continue")))
            opts.append(Option(id="restart", label=t("option_restart")))
        else:
            opts.append(Option(id="start", label=t("option_start")))
        opts += [Option(id="articles", label=t("option_articles")), Option(id="talk", label=t("option_talk")),
                 Option(id="language", label=t("option_language")), Option(id="help", label=t("option_help"))]
        return opts

    def reask(self, reason_text_id: str | None = None, **values: object) -> None:
        if reason_text_id:
            self.say(self.t(reason_text_id, **values))
        if self.s.step:
            self.ask(self.s.step)

    # ----- understanding -----------------------------------------------------------------------------
    def words(self, intent: str) -> list[str]:
        return [str(w) for w in self.book.keywords.get(intent, {}).get(self.lang, [])]

    def intent_of(self, text: str, intents: tuple[str, ...]) -> str | None:
        """The intent whose words make up the whole message: the worker's language first, then any language
        as long as only one intent matches (a Vietnamese worker may still type "yes")."""
        hits = _keyword_hits(self.book, key(text), loose_key(text))
        own = [i for i in intents if (i, self.lang) in hits]
        if len(own) == 1:
            return own[0]
        if own:
            return None
        other = {i for i, _ in hits if i in intents}
        return other.pop() if len(other) == 1 else None

    def _says_no(self, text: str) -> bool:
        """The whole message is "no" or "none" (asked one at a time: Tagalog "wala" is both)."""
        return bool(self.intent_of(text, ("none",)) or self.intent_of(text, ("no",)))

    def is_danger(self, text: str) -> bool:
        """The NLU's verdict when it has read this message: its detector knows these phrases too, and also the
        everyday sentences that contain them ("can you help me with the visa form"). Without the NLU, the
        phrases alone decide."""
        if self.event is not None and self.event.intent is not None and self.event.text == text:
            return self.event.danger
        return contains_any(clean(text), _danger_phrases(self.book))

    # ----- the turn ----------------------------------------------------------------------------------
    def handle(self, event: InboundEvent) -> None:
        self.event = event
        self.detected_language = event.detected_language
        if event.kind is InboundKind.UNFOLLOW:
            self.s.paused = True
            self.effect("unreachable")
            return
        if event.kind is InboundKind.NUDGE:
            self._nudge(event.nudge or "", event.nudge_ref)
            return
        if event.kind is InboundKind.FOLLOW:
            self._apply_language_hint(event)
            if self.s.step is None:
                self._first_contact()
            else:
                self._welcome_back()
            return
        if self.s.step is None:
            self._apply_language_hint(event)
            if event.kind is InboundKind.TEXT and self.is_danger(event.text):
                self._danger()
            self._first_contact()
            return
        if event.kind is InboundKind.MEDIA:
            self.reask("media_not_understood")
            return
        if event.kind is InboundKind.LOCATION:
            self.reask("location_received")
            return
        if event.kind is InboundKind.CHOICE:
            self._choice(event.choice_ids)
            return
        self._text(event.text)

    def _apply_language_hint(self, event: InboundEvent) -> None:
        hint = event.language_hint or event.detected_language
        if hint in LANGUAGES and (event.language_chosen or not self.s.language_confirmed):
            if hint != self.s.language:
                self.s.language = hint
                self.effect("profile", language=hint)
            if event.language_chosen and not self.s.language_confirmed:
                self.s.language_confirmed = True

    def _first_contact(self) -> None:
        self.say(self.t("welcome"))
        self.ask("consent" if self.s.language_confirmed else "language")

    def _welcome_back(self) -> None:
        if self.s.paused:
            self.s.paused = False
            self.effect("opt_out", value=False)
        self.say(self.t("welcome_back"))
        self.reask()

    def _text(self, raw: str) -> None:
        text = clean(raw)
        if text and self.is_danger(raw):
            self._danger()
            return
        if len(text) > MAX_MESSAGE_CHARS:
            self.reask("reask_too_long", max=MAX_MESSAGE_CHARS)
            return
        if not text or not is_meaningful(text):
            self._reask_answer()
            return
        command = self.intent_of(text, COMMANDS)
        if command:
            self._command(command)
            return
        if self.s.paused:
            self._welcome_back()
            return
        self._answer(text=text, choice_ids=[])

    def _choice(self, ids: list[str]) -> None:
        ids = [str(i) for i in ids if str(i)]
        if not ids:
            self._reask_answer()
            return
        first = ids[0]
        if first.startswith("cmd:") and first[4:] in COMMANDS:
            self._command(first[4:])
            return
        if first.startswith("set_language:"):
            lang = first.split(":", 1)[1]
            if lang in LANGUAGES:
                self._set_language(lang)
                if self.s.step == "language":
                    self._after_language()
                else:
                    self.reask()
                return
        if self.s.paused:
            self.s.paused = False
            self.effect("opt_out", value=False)
        self._answer(text=None, choice_ids=ids)

    def _reask_text_id(self) -> str:
        step_id = self.s.step or ""
        if step_id in SHEET:
            qtype = self.book.question(step_id).type
            return {"checklist": "reask_checklist", "amount": "reask_amount", "free_text": "reask_free_text",
                    "yes_no": "reask_yes_no", "yes_no_unknown": "reask_yes_no"}[qtype]
        return "reask_choice" if step_id != "employer_code" else "employer_code_invalid"

    def _reask_answer(self) -> None:
        if self._command_in_own_words():
            return
        text_id = self._reask_text_id()
        if text_id == "reask_amount":
            self.reask(text_id, example=self.t("amount_example"))
        else:
            self.reask(text_id)

    # ----- commands ----------------------------------------------------------------------------------
    def _command(self, command: str) -> None:
        step_id = self.s.step or "menu"
        if command == "help":
            self.reask("help")
        elif command == "stop":
            self.s.paused = True
            self.effect("opt_out", value=True)
            self.say(self.t("stopped"))
        elif command == "talk_to_person":
            self._handoff("normal", "asked")
            self._say_handoff_recorded()
            self.reask()
        elif command == "menu":
            if step_id != "menu":
                self.s.return_to = step_id if step_id in ORDER else self.s.return_to
            self.s.paused = False
            self.ask("menu")
        elif command == "change_language":
            if step_id not in ("language",):
                self.s.return_to = step_id
            self.ask("language")
        elif command == "back":
            if step_id not in ORDER:
                self.reask()
            elif not self.s.history:
                self.reask("at_first_question")
            else:
                self.ask(self.s.history.pop())
        elif command == "skip":
            self._skip(step_id)
        elif command == "delete_data":
            if step_id != "erase_confirm":
                self.s.return_to = step_id  # where to go on if they change their mind
            self.ask("erase_confirm")

    def _skip(self, step_id: str) -> None:
        if step_id == "consent":
            self.reask("cannot_skip")
        elif step_id == "language":
            self._set_language(self.s.language)
            self._after_language()
        elif step_id == "counsellor_offer":
            self._answer(text=None, choice_ids=["no"])
        elif step_id in OPTIONAL_ONBOARDING:
            self.effect("profile", **{step_id: None})
            self._advance(step_id)
        elif step_id in SHEET:
            self._record(step_id, "skipped", "")
            self._advance(step_id)
        else:
            self.reask()

    # ----- answers -----------------------------------------------------------------------------------
    def _answer(self, text: str | None, choice_ids: list[str]) -> None:
        step_id = self.s.step or ""
        handler = {
            "language": self._answer_language, "consent": self._answer_consent,
            "employer_code": self._answer_employer_code, "residence_status": self._answer_residence,
            "prefecture": self._answer_prefecture, "menu": self._answer_menu,
            "article_question": self._answer_article_question, "article_pick": self._answer_article_pick,
            "counsellor_offer": self._answer_counsellor_offer, "followup": self._answer_followup,
            "erase_confirm": self._answer_erase_confirm,
        }.get(step_id)
        if handler:
            handler(text, choice_ids)
            return
        if step_id in SHEET:
            q = self.book.question(step_id)
            {"checklist": self._answer_checklist, "amount": self._answer_amount, "free_text": self._answer_free_text,
             "yes_no": self._answer_yes_no, "yes_no_unknown": self._answer_yes_no}[q.type](q, text, choice_ids)
            return
        self.ask("menu")

    def _pick(self, text: str | None, choice_ids: list[str], options: list[Option]) -> str | None:
        """The id of the one option chosen by button, by number or by its label."""
        ids = [o.id for o in options]
        if choice_ids:
            return choice_ids[0] if len(choice_ids) == 1 and choice_ids[0] in ids else None
        assert text is not None
        n = parse_single_number(text, len(options))
        if n is not None:
            return options[n - 1].id
        typed = key(text)
        for o in options:
            if typed in (key(o.label), key(o.id)):
                return o.id
        return None

    def _answer_language(self, text: str | None, choice_ids: list[str]) -> None:
        options = [Option(id=c, label=LANGUAGE_NAMES[c]) for c in LANGUAGES]
        chosen = self._pick(text, choice_ids, options)
        if chosen is None and text:
            for code, aliases in LANGUAGE_ALIASES.items():
                if matches_any(text, [*aliases, code]):
                    chosen = code
        if chosen is None and self.detected_language in LANGUAGES:
            chosen = self.detected_language  # they wrote to us in it: that is their choice
        if chosen is None:
            self._reask_answer()
            return
        self._set_language(chosen)
        self._after_language()

    def _set_language(self, lang: str) -> None:
        if lang != self.s.language:
            self.effect("profile", language=lang)
        self.s.language = lang
        self.s.language_confirmed = True

    def _after_language(self) -> None:
        self.say(self.t("language_set"))
        if self.s.return_to and self.s.return_to != "language":
            target, self.s.return_to = self.s.return_to, None
            self.ask(target)
        else:
            self._advance("language")

    def _answer_consent(self, text: str | None, choice_ids: list[str]) -> None:
        chosen = self._pick(text, choice_ids, [Option(id="agree", label=""), Option(id="decline", label="")])
        if chosen is None and text:
            chosen = {"agree": "agree", "yes": "agree", "decline": "decline", "no": "decline"}.get(
                self.intent_of(text, ("agree", "decline")) or self.intent_of(text, ("yes", "no")) or "")
        if chosen is None:
            self._reask_answer()
            return
        self.s.consent = chosen == "agree"
        self.effect("profile", consent=self.s.consent)
        if self.s.consent:
            self._advance("consent")
        else:
            self.say(self.t("consent_declined"))
            self.s.return_to = None
            self.ask("menu")

    def _answer_employer_code(self, text: str | None, choice_ids: list[str]) -> None:
        if choice_ids:
            self._skip("employer_code") if choice_ids == ["skip"] else self._reask_answer()
            return
        assert text is not None
        if parse_single_number(text, 1) == 1:  # the numbered "Skip"
            self._skip("employer_code")
            return
        code = clean(text).upper()
        if not EMPLOYER_CODE.fullmatch(code):
            self._reask_answer()
            return
        self.effect("profile", employer_code=code)
        self._advance("employer_code")

    def _answer_residence(self, text: str | None, choice_ids: list[str]) -> None:
        options = _listed_options(self.book, "residence_status", self.lang)
        chosen = self._pick(text, choice_ids, [*options, Option(id="skip", label=self.t("option_skip"))])
        if chosen is None and text:
            chosen = _residence_names(self.book).get(numbered_name_key(text))
        if chosen is None:
            self._reask_answer()
        elif chosen == "skip":
            self._skip("residence_status")
        else:
            self.effect("profile", residence_status=chosen)
            self._advance("residence_status")

    def _answer_prefecture(self, text: str | None, choice_ids: list[str]) -> None:
        options = _listed_options(self.book, "prefecture", self.lang)
        chosen = self._pick(text, choice_ids, [*options, Option(id="skip", label=self.t("option_skip"))])
        if chosen is None and text:
            k = key(text).replace("-", "").replace(" ", "")
            for p in self.book.prefectures:
                names = {p.ja, p.ja.rstrip("都府県"), p.latin.casefold(), p.latin.casefold() + "ken",
                         p.latin.casefold() + "prefecture"}
                if k in {n.casefold() for n in names}:
                    chosen = p.id
        if chosen is None:
            self._reask_answer()
        elif chosen == "skip":
            self._skip("prefecture")
        else:
            self.effect("profile", prefecture=chosen)
            self._advance("prefecture")

    def _answer_checklist(self, q: Question, text: str | None, choice_ids: list[str]) -> None:
        item_ids = [i.id for i in q.items]
        if choice_ids:
            if choice_ids == ["none"]:
                picked: list[str] | None = []
            elif all(c in item_ids for c in choice_ids):
                picked = [i for i in item_ids if i in choice_ids]
            else:
                picked = None
        else:
            assert text is not None
            if self._says_no(text):  # "no" to "did any of these happen to you?" is "none of them"
                picked = []
            else:
                positions = parse_selection(text, len(item_ids) + 1, item_ids)
                if positions is None:
                    looks_numeric = bool(re.fullmatch(r"[\d\s,，、;/.\-]+", clean(text)))
                    if looks_numeric:
                        self.reask("reask_checklist_range", max=len(item_ids) + 1)
                    else:
                        self._reask_answer()
                    return
                none_pos = len(item_ids) + 1
                if none_pos in positions and len(positions) > 1:
                    self._reask_answer()  # "nothing applies" together with items: ask what was meant
                    return
                picked = [item_ids[p - 1] for p in sorted(positions) if p != none_pos]
        if picked is None:
            self._reask_answer()
            return
        self._record(q.id, picked, text or ",".join(choice_ids))
        self._advance(q.id)

    def _answer_amount(self, q: Question, text: str | None, choice_ids: list[str]) -> None:
        if choice_ids:
            if choice_ids == ["unknown"]:
                self._record(q.id, "unknown", "unknown")
                self.say(self.t("amount_unknown"))
                self._advance(q.id)
            else:
                self._reask_answer()
            return
        assert text is not None
        if self.intent_of(text, ("none",)) == "none":
            self._record(q.id, {"value": 0, "currency": None, "jpy": 0}, text)
            self.say(self.t("amount_none"))
            self._advance(q.id)
            return
        if self.intent_of(text, ("unknown",)) == "unknown":
            self._record(q.id, "unknown", text)
            self.say(self.t("amount_unknown"))
            self._advance(q.id)
            return
        amount = self.amounts.parse(text, self.lang)
        if amount is None:
            self._reask_answer()
            return
        self._record(q.id, _amount_answer(amount), text)
        if amount.value == 0:
            self.say(self.t("amount_none"))
        elif amount.currency == "JPY":
            self.say(self.t("amount_understood", amount=f"{self.number(amount.jpy)} JPY"))
        else:
            self.say(self.t("amount_understood_jpy", amount=f"{self.number(amount.value)} {amount.currency}",
                            jpy=self.number(amount.jpy)))
        self._advance(q.id)

    def _answer_free_text(self, q: Question, text: str | None, choice_ids: list[str]) -> None:
        if choice_ids:
            self._skip(q.id) if choice_ids == ["skip"] else self._reask_answer()
            return
        assert text is not None
        if parse_single_number(text, 1) == 1 or self._says_no(text):
            self._skip(q.id)  # the numbered "Skip", or "no" / "nothing": there is nothing more to tell
            return
        if len(text) > q.max_chars:
            self.reask("reask_too_long", max=q.max_chars)
            return
        self._record(q.id, text, text)
        self._advance(q.id)

    def _answer_yes_no(self, q: Question, text: str | None, choice_ids: list[str]) -> None:
        options = self._yes_no_options(q.type == "yes_no_unknown")
        chosen = self._pick(text, choice_ids, options)
        if chosen is None and text:
            intents = ("yes", "no", "unknown") if q.type == "yes_no_unknown" else ("yes", "no")
            chosen = self.intent_of(text, intents)
        if chosen is None:
            self._reask_answer()
            return
        self._record(q.id, chosen, text or chosen)
        self._advance(q.id)

    def _answer_menu(self, text: str | None, choice_ids: list[str]) -> None:
        chosen = self._pick(text, choice_ids, self._menu_options())
        if chosen is None and text and self.intent_of(text, ("yes",)) == "yes" and self.s.return_to:
            chosen = "continue"
        if chosen is None and text:
            self._free_text_at_menu(text)
            return
        if chosen is None:
            self._reask_answer()
            return
        if chosen == "articles":
            self.ask("article_question")
            return
        if chosen == "continue":
            target, self.s.return_to = self.s.return_to, None
            self.ask(target if target in ORDER else self._first_open_question())
        elif chosen in ("start", "restart"):
            self._start_sheet(restart=chosen == "restart")
        elif chosen == "talk":
            self._command("talk_to_person")
        elif chosen == "language":
            self.ask("language")
        elif chosen == "help":
            self.reask("help")

    def _free_text_at_menu(self, text: str) -> None:
        """What a worker writes at the menu in their own words: the NLU's intent when it is sure, otherwise a
        question for the portal articles. "No" to "can I help you with anything else?" ends the talk kindly, and a
        bare "yes" shows what they can choose."""
        if self._says_no(text):
            self.say(self.t("goodbye"))
        elif self.intent_of(text, ("yes",)) or self.intent_of(text, ("agree",)):
            self.ask("menu")
        elif not self._act_on_intent():
            self._search_articles(text)

    def _command_in_own_words(self) -> bool:
        """A message that is no answer to the question, but that the NLU is sure asks for a person, to stop, for
        help, for another language or to delete their data: that is done instead of asking the question again
        (at the privacy notice, "I want to talk to someone" must not get the notice once more)."""
        event = self.event
        if event is None or event.kind is not InboundKind.TEXT or (event.intent_confidence or 0) < INTENT_CONFIDENCE:
            return False
        if self._is_an_answer_word():
            return False
        command = {"talk_to_person": "talk_to_person", "stop": "stop", "help": "help",
                   "change_language": "change_language", "delete_my_data": "delete_data"}.get(event.intent or "")
        if command is None:
            return False
        unsure = (event.intent_confidence or 0) < COMMAND_AT_QUESTION_CONFIDENCE
        if unsure or any(c.isdigit() for c in event.text or ""):
            # Not sure enough to drop the question (or an answer with a number in it): the help, which names the
            # words that pause, call a counsellor or change the language, and the question again.
            command = "help"
        self._command(command)
        return True

    def _is_an_answer_word(self) -> bool:
        """Whether the whole message is a word that answers questions ("ya", "no", "ok", "skip"...) in any
        language. Such a word is never taken for a command, whatever the NLU guessed: Indonesian "ya" is yes, but
        Spanish "ya" ends "ya basta" and "para ya", and the classifier learned it as "stop"."""
        text = self.event.text if self.event is not None else None
        if not text:
            return False
        return any(intent in ANSWER_WORDS for intent, _ in _keyword_hits(self.book, key(text), loose_key(text)))

    def _act_on_intent(self) -> bool:
        """Acts on what the NLU understood, when it is sure and the bot is not waiting for an answer to a question
        of the sheet; False when there is nothing to act on."""
        event = self.event
        intent = event.intent if event is not None and (event.intent_confidence or 0) >= INTENT_CONFIDENCE else None
        if intent is not None and self._is_an_answer_word():
            intent = "greet"  # "ya", "no", "ok" outside a question: show what they can answer to
        if intent in ("talk_to_person", "stop", "help", "change_language"):
            self._command(intent)
        elif intent == "start_diagnosis":
            self._start_sheet(restart=False)
        elif intent in ("greet", "thanks"):
            self.ask("menu")
        else:
            return False
        return True

    def _answer_article_question(self, text: str | None, choice_ids: list[str]) -> None:
        if "back_to_menu" in choice_ids or not text:
            self.ask("menu")
            return
        if not self._act_on_intent():
            self._search_articles(text)

    def _search_articles(self, text: str) -> None:
        hits = _library().search(text, self.lang, limit=3)
        if not hits:
            self.say(self.t("articles_none"))
            self.ask("menu")
            return
        self.s.article_ids = [h.article.id for h in hits]
        self._offer_articles()

    def _offer_articles(self) -> None:
        library = _library()
        lines = []
        for i, article_id in enumerate(self.s.article_ids, 1):
            article = library.get(article_id)
            if article is not None:
                # One line per article, title and summary together: a web chat shows the titles again as buttons
                # and drops lines that only repeat a button, which would leave a summary without its title.
                lines.append(f"{i}. {article.title(self.lang)} — {_two_lines(article.summary(self.lang))}")
        self.s.step = "article_pick"
        _, question_id, body, options, _ = self._question("article_pick")
        self.out.append(Outbound(kind=OutboundKind.CHOICE, text="\n\n".join([body, *lines]), question=question_id,
                                 options=options, language=self.lang))

    def _answer_article_pick(self, text: str | None, choice_ids: list[str]) -> None:
        _, _, _, options, _ = self._question("article_pick")
        chosen = self._pick(text, choice_ids, options)
        if chosen is None and text:
            if not self._act_on_intent():
                self._search_articles(text)  # another question instead of a number
            return
        if chosen is None or chosen == "back_to_menu":
            self.ask("menu")
            return
        article = _library().get(chosen.split(":", 1)[1])
        if article is None:
            self.ask("menu")
            return
        sources = "\n".join(f"• {src.name}: {src.url}" for src in article.sources)
        self.say(f"{article.title(self.lang)}\n\n{article.body(self.lang)}\n\n{self.t('article_sources')}:\n{sources}")
        self._offer_articles()

    def _recommend_articles(self, result: Score) -> None:
        indicators = sorted({f.indicator for f in result.findings})
        hits = _library().for_indicators(indicators, self.lang, limit=3) if indicators else []
        if hits:
            self.s.article_ids = [h.article.id for h in hits]
            lines = [f"• {h.article.title(self.lang)}" for h in hits]
            self.say("\n".join([self.t("articles_recommended"), *lines]))

    def _answer_counsellor_offer(self, text: str | None, choice_ids: list[str]) -> None:
        chosen = self._pick(text, choice_ids, self._yes_no_options(False))
        if chosen is None and text:
            chosen = self.intent_of(text, ("yes", "no"))
        if chosen is None:
            self._reask_answer()
            return
        if chosen == "yes":
            self._handoff("critical", "critical_result")
            self._say_handoff_recorded()
        else:
            self.say(self.t("counsellor_declined", helplines=self.book.helpline_text(self.lang)))
        self._after_result_menu()

    # ----- writing first ---------------------------------------------------------------------------------
    def _nudge(self, kind: str, ref: int | None) -> None:
        """The scheduler asks the bot to write first. Whoever said stop, or never agreed to the privacy
        notice, hears nothing; the scheduler has already checked the timing."""
        if self.s.paused or not self.s.consent:
            return
        if kind == "reminder":
            if not self.s.sheet_in_progress:
                return
            target = next((q for q in (self.s.step, self.s.return_to) if q in SHEET), None)
            left = sum(1 for q in SHEET if q not in self.s.answers)
            self.s.return_to = None
            self.ask(target or self._first_open_question(), intro=[self.t("nudge_reminder", left=left)])
        elif kind == "reinvite":
            if self.s.sheet_in_progress:
                return  # an unfinished sheet has its own reminders
            self.s.return_to = None
            self.ask("menu", intro=[self.t("nudge_reinvite")])
        elif kind == "followup" and ref is not None:
            self.s.followup_ref = ref
            if self.s.step in ORDER:
                self.s.return_to = self.s.step
            self.ask("followup")

    def _answer_followup(self, text: str | None, choice_ids: list[str]) -> None:
        options = self._followup_options()
        chosen = self._pick(text, choice_ids, options)
        if chosen is None and text:
            chosen = {"yes": "better", "no": "same"}.get(self.intent_of(text, ("yes", "no")) or "")
        if chosen is None:
            self._reask_answer()
            return
        self.effect("followup_answer", handoff_id=self.s.followup_ref, value=chosen)
        self.s.followup_ref = None
        if chosen == "better":
            self.say(self.t("followup_glad"))
        elif chosen == "same":
            self.say(self.t("followup_same", talk=self.t("option_talk"),
                            helplines=self.book.helpline_text(self.lang)))
        else:
            self._handoff("normal", "followup_worse")
            self.say(self.t("followup_worse"))
        self.ask("menu")
    def _answer_erase_confirm(self, text: str | None, choice_ids: list[str]) -> None:
        _, _, _, options, _ = self._question("erase_confirm")
        chosen = self._pick(text, choice_ids, options)
        if chosen is None and text:
            chosen = {"yes": "erase_yes", "no": "erase_no"}.get(self.intent_of(text, ("yes", "no")) or "")
        if chosen is None:
            self._reask_answer()
            return
        target, self.s.return_to = self.s.return_to, None
        if chosen == "erase_yes":
            # The last words to this person; after them the service erases everything, this state included.
            self.say(self.t("erase_done"))
            self.s = ConversationState(language=self.lang)
            self.effect("erase")
            return
        self.say(self.t("erase_cancelled"))
        if target in ORDER or target in ("menu", "counsellor_offer", "article_question"):
            self.ask(target)  # type: ignore[arg-type]
        else:
            self.ask("menu")

    # ----- moving through the sheet ------------------------------------------------------------------
    def _record(self, qid: str, value: Any, raw: str) -> None:
        if qid in SHEET:
            self.s.answers[qid] = value
            self.s.raw_answers[qid] = raw
            self.effect("answer", question=qid, value=value, raw=raw)

    def _first_open_question(self) -> str:
        for qid in SHEET:
            if qid not in self.s.answers:
                return qid
        return "Q13"

    def _advance(self, current: str) -> None:
        if current in ORDER:
            self.s.history.append(current)
        nxt = self._next_step(current)
        if nxt is None:
            self._finish_sheet()
            return
        intro: list[str] = []
        if nxt == "Q1":
            if not self.s.sheet_in_progress:
                self.s.sheet_in_progress = True
                self.effect("sheet_started")
            intro = [self.t("sheet_intro"), self.t("section_before")]
        elif nxt == "Q3":
            intro = [self.t("section_after")]
        elif nxt == "Q13":
            intro = [self.t("section_response")]
        if nxt == "Q1" and current != "prefecture" and current not in ONBOARDING:
            intro = [self.t("section_before")]
        self.ask(nxt, intro)

    def _next_step(self, current: str) -> str | None:
        idx = ORDER.index(current)
        for candidate in ORDER[idx + 1:]:
            if candidate == "consent" and self.s.consent:
                continue
            if candidate in OPTIONAL_ONBOARDING and self.s.onboarded:
                continue
            if candidate == "Q1":
                self.s.onboarded = True
            return candidate
        return None

    def _start_sheet(self, restart: bool) -> None:
        if not self.s.consent:
            self.say(self.t("consent_needed"))
            self.ask("consent")
            return
        if self.s.sheet_in_progress and restart:
            self.effect("sheet_abandoned")
        self.s.sheet_in_progress = True
        self.s.answers, self.s.raw_answers, self.s.history, self.s.return_to = {}, {}, [], None
        self.effect("sheet_started")
        self.ask("Q1", [self.t("sheet_intro"), self.t("section_before")])

    def _finish_sheet(self) -> None:
        result = score(self.book, self.s.answers)
        self.out.append(self._result_message(result))
        self.effect("sheet_completed", level=result.level, indicators=result.indicator_ids,
                    findings=[f.model_dump() for f in result.findings], answers=dict(self.s.answers),
                    completed_at=self.now.isoformat())
        self.s.sheet_in_progress = False
        self.s.sheets_completed += 1
        self.s.last_level = result.level
        self.s.history = []
        self._recommend_articles(result)
        if result.handoff_requested:
            self._handoff("critical" if result.level == "critical" else "normal", "q13_yes",
                          level=result.level, indicators=result.indicator_ids)
            self._say_handoff_recorded()
            self._after_result_menu()
        elif result.level == "critical":
            self.ask("counsellor_offer")
        else:
            self._after_result_menu()

    def _after_result_menu(self) -> None:
        self.s.return_to = None
        self.say(self.t("after_result"))
        self.ask("menu")

    def _result_message(self, result: Score) -> Outbound:
        lines = [self.t("result_title"), self.t(f"result_level_{result.level}")]
        if result.findings:
            lines.append(self.t("result_found"))
            for f in result.findings:
                indicator = self.book.indicators[f.indicator](self.lang)
                lines.append(f"• {indicator}: {self._finding_text(f.id)}")
        lines.append(self.t(f"next_{result.level}"))
        lines.append(self.t("result_saved"))
        return Outbound(kind=OutboundKind.RESULT, text="\n\n".join(lines), level=result.level,
                        indicators=result.indicator_ids, language=self.lang)

    def _finding_text(self, finding_id: str) -> str:
        if finding_id.startswith("Q"):
            q = self.book.question(finding_id)
            if q.type == "amount":
                answer = self.s.answers.get(q.id) or {}
                shown = f"{self.number(answer.get('value', 0))} {answer.get('currency') or ''}".strip()
                if answer.get("currency") not in (None, "JPY"):
                    shown += f" (≈ {self.number(answer.get('jpy', 0))} JPY)"
                return self.t("result_fee", amount=shown)
            answer_label = self.t(f"option_{self.s.answers.get(q.id)}")
            return f"{q.text(self.lang)} → {answer_label}"
        for q in self.book.questions:
            for item in q.items:
                if item.id == finding_id:
                    return item.text(self.lang)
        return finding_id

    # ----- help ----------------------------------------------------------------------------------------
    def _handoff(self, priority: str, reason: str, **extra: Any) -> None:
        self.effect("handoff", priority=priority, reason=reason, language=self.lang, **extra)

    def _say_handoff_recorded(self) -> None:
        self.say(self.t("handoff_recorded"))
        hours = self.event.counsellor_hours if self.event is not None else None
        if hours is not None:
            self.say(self.t("counsellors_open" if hours.open_now else "counsellors_closed",
                            hours=self._describe_hours(hours)))

    def _describe_hours(self, hours: CounsellorHours) -> str:
        names = self.t("weekdays").split(",")
        days = sorted(hours.days)
        consecutive = days == list(range(days[0], days[-1] + 1)) if days else False
        if consecutive and len(days) > 2:
            span = f"{names[days[0]]}–{names[days[-1]]}"
        else:
            span = ", ".join(names[d] for d in days)
        return f"{span} {hours.start}–{hours.end}"

    def _danger(self) -> None:
        self._handoff("urgent", "danger_words")
        self.say(self.t("danger", helplines=self.book.helpline_text(self.lang)))


def _amount_answer(amount: Amount) -> dict[str, Any]:
    return {"value": amount.value, "currency": amount.currency, "jpy": amount.jpy,
            "currency_assumed": amount.currency_assumed, "rate_date": amount.rate_date}


# The flow book never changes once loaded: what is derived from it is computed once per book.
_Pairs = dict[str, set[tuple[str, str]]]  # a message's form -> the (intent, language) pairs it is a word of
_DERIVED: dict[int, tuple[FlowBook, AmountParser, tuple[str, ...], _Pairs, _Pairs]] = {}
_LISTS: dict[tuple[int, str, str], tuple[FlowBook, list[Option]]] = {}
_RESIDENCE_NAMES: dict[int, tuple[FlowBook, dict[str, str]]] = {}


def _listed_options(book: FlowBook, which: str, lang: str) -> list[Option]:
    """The residence statuses or the 47 prefectures as options in one language, built once per book and language
    (Options are never changed once made; callers copy the list before adding to it)."""
    cached = _LISTS.get((id(book), which, lang))
    if cached is None or cached[0] is not book:
        items = book.residence_statuses if which == "residence_status" else book.prefectures
        cached = (book, [Option(id=item.id, label=item.label(lang)) for item in items])
        _LISTS[(id(book), which, lang)] = cached
    return cached[1]


def _residence_names(book: FlowBook) -> dict[str, str]:
    """Every way of naming a residence status that the sheet accepts, as numbered_name_key forms -> its id: its
    name in each language, with and without what the name adds in brackets, the bracketed name alone
    ("Ginou Jisshu 1"), and its aliases."""
    cached = _RESIDENCE_NAMES.get(id(book))
    if cached is None or cached[0] is not book:
        names: dict[str, str] = {}
        for status in book.residence_statuses:
            for name in [*(str(label) for label in status.label.values()), *status.aliases]:
                inside = [i for i in re.findall(r"[(（]([^)）]*)[)）]", name) if not re.fullmatch(r"\s*[ivx]+\s*", i)]
                # Without its brackets only when they held another name, not the number: "(i)" tells 1 from 2.
                outside = re.sub(r"[(（][^)）]*[)）]", " ", name) if inside else name
                for form in (name, outside, *inside):
                    if name_key := numbered_name_key(form):
                        names.setdefault(name_key, status.id)
        cached = _RESIDENCE_NAMES[id(book)] = (book, names)
    return cached[1]


def _derived(book: FlowBook) -> tuple[FlowBook, AmountParser, tuple[str, ...], _Pairs, _Pairs]:
    cached = _DERIVED.get(id(book))
    if cached is None or cached[0] is not book:
        # The keywords the other way round: each word's form (exact, and with Latin accents folded) -> its pairs.
        by_key: _Pairs = {}
        by_folded: _Pairs = {}
        for intent, by_language in book.keywords.items():
            for lang, words in (by_language or {}).items():
                for k in (key(str(w)) for w in words):
                    if k:
                        by_key.setdefault(k, set()).add((intent, lang))
                        by_folded.setdefault(_fold_latin(k), set()).add((intent, lang))
        # A cry for help counts in whichever language it comes.
        danger = tuple(str(p) for lang in LANGUAGES for p in book.keywords.get("danger", {}).get(lang, []))
        cached = (book, AmountParser(book.currencies), danger, by_key, by_folded)
        _DERIVED[id(book)] = cached
    return cached


def _keyword_hits(book: FlowBook, exact: str, loose: str) -> set[tuple[str, str]]:
    """The (intent, language) pairs that have the whole message among their words (case, width and, for the
    loose form, Latin accents ignored): one lookup instead of a test per intent and language."""
    if not exact:
        return set()
    _, _, _, by_key, by_folded = _derived(book)
    return by_key.get(exact, set()) | by_folded.get(loose, set())


def _danger_phrases(book: FlowBook) -> tuple[str, ...]:
    return _derived(book)[2]


def _amount_parser(book: FlowBook) -> AmountParser:
    return _derived(book)[1]


def reaches_bot_while_counsellor_holds(state: ConversationState, event: InboundEvent, book: FlowBook) -> bool:
    """While a counsellor holds the conversation the bot keeps quiet; only "stop", "delete my data" (and its
    confirmation), a cry for help, and the worker leaving (unfollow) still reach it."""
    if event.kind is InboundKind.UNFOLLOW:
        return True
    turn = _Turn(book, state, datetime.now(UTC))
    if state.step == "erase_confirm":
        return True  # the answer to "delete all your data?" is for the bot, whoever holds the conversation
    if event.kind is InboundKind.CHOICE:
        return "cmd:stop" in event.choice_ids or "cmd:delete_data" in event.choice_ids
    if event.kind is not InboundKind.TEXT:
        return False
    turn.event = event
    text = clean(event.text)
    return bool(text) and (turn.is_danger(event.text) or turn.intent_of(text, COMMANDS) in ("stop", "delete_data"))


def _library():  # type: ignore[no-untyped-def]
    from bot.articles import default_library

    return default_library()


def _two_lines(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
