"""Shared objects for the routers: settings, the database, the service and the pipeline, built once per app."""
from __future__ import annotations

from dataclasses import dataclass

from bot.campaigns import CampaignService
from bot.channels.base import Channel
from bot.flowbook import FlowBook
from bot.inbox import InboxService
from bot.pipeline import InboundStore, Pipeline
from bot.scheduler import SchedulerRuntime
from bot.service import ConversationService
from bot.settings import Settings
from bot.store.db import Database


@dataclass
class AppContext:
    settings: Settings
    db: Database
    book: FlowBook
    service: ConversationService
    channels: dict[str, Channel]
    inbound: InboundStore
    pipeline: Pipeline | None
    inbox: InboxService
    campaigns: CampaignService
    scheduler: SchedulerRuntime
