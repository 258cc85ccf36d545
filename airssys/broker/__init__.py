"""Routing between actors: addresses, topics, request/response, dead letters."""

from ._broker import Callback as Callback
from ._broker import DeadLetter as DeadLetter
from ._broker import MessageBroker as MessageBroker
from ._broker import Remote as Remote
from ._broker import topic_matches as topic_matches

__all__ = ("Callback", "DeadLetter", "MessageBroker", "Remote", "topic_matches")
