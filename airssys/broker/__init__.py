"""Routing between actors: addresses, topics, request/response, dead letters, and
the mailboxes messages wait in. Below the actors: it knows them as endpoints."""

from ..messages import Callback as Callback
from ._broker import Addressed as Addressed
from ._broker import ComponentPort as ComponentPort
from ._broker import DeadLetter as DeadLetter
from ._broker import Directory as Directory
from ._broker import Endpoint as Endpoint
from ._broker import MessageBroker as MessageBroker
from ._broker import PayloadGate as PayloadGate
from ._broker import Remote as Remote
from ._broker import not_bytes as not_bytes
from ._broker import reason_kind as reason_kind
from ._broker import topic_matches as topic_matches
from ._mailbox import Backpressure as Backpressure
from ._mailbox import Mailbox as Mailbox
from ._mailbox import MailboxStats as MailboxStats

__all__ = (
    "Addressed",
    "Backpressure",
    "Callback",
    "ComponentPort",
    "DeadLetter",
    "Directory",
    "Endpoint",
    "Mailbox",
    "MailboxStats",
    "MessageBroker",
    "PayloadGate",
    "Remote",
    "not_bytes",
    "reason_kind",
    "topic_matches",
)
