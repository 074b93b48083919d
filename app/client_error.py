"""The one error the chat page shows as it is: its message says what happened and what to do."""


class ClientError(Exception):
    """Something the person at the page can act on: the message says what happened and what to do."""
