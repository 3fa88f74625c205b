"""Shared objects for the routers: settings, the database and the conversation service, built once per app."""
from __future__ import annotations

from dataclasses import dataclass

from bot.flowbook import FlowBook
from bot.service import ConversationService
from bot.settings import Settings
from bot.store.db import Database


@dataclass
class AppContext:
    settings: Settings
    db: Database
    book: FlowBook
    service: ConversationService
