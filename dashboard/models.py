"""Every model, imported in one place so Alembic and the drift test see the whole schema."""

from dashboard.audit.models import AuditEntry
from dashboard.auth.models import ApiToken, LoginSession, RateLimitCounter, User
from dashboard.dispatch.models import (
    Batch,
    BatchEntry,
    Delivery,
    SchedulerPoll,
    SendLimit,
    SendSpend,
)
from dashboard.events.models import Collaborator, Event, Guest
from dashboard.messages.models import Message
from dashboard.suppressions.models import Suppression, WebhookReceipt

__all__ = [
    "ApiToken",
    "AuditEntry",
    "Batch",
    "BatchEntry",
    "Collaborator",
    "Delivery",
    "Event",
    "Guest",
    "LoginSession",
    "Message",
    "RateLimitCounter",
    "SchedulerPoll",
    "SendLimit",
    "SendSpend",
    "Suppression",
    "User",
    "WebhookReceipt",
]
