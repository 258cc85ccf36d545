"""echo: answers every message with its own value, in the request's codec."""

from airssys.sdk import Message, on_message


@on_message
def handle(message: Message) -> object:
    return message.value
