"""Typed errors: each carries an HTTP status and a stable code, so one handler can render them."""

from __future__ import annotations


class OdnosError(Exception):
    """Base of every error odnos reports to a user or a client.

    ``code`` is a short stable identifier (``bad_token``, ``unknown_site``); ``message`` says what
    went wrong and, where it helps, how to fix it; ``status`` is the HTTP status a route answers;
    ``field`` names the request field at fault (``contacts[3].email``), when one is.
    """

    status: int = 400
    code: str = "bad_request"
    field: str | None = None

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if field is not None:
            self.field = field

    def to_json(self) -> dict:
        error: dict = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}


class ConfigError(OdnosError):
    """A setting is missing or malformed; the message names the setting and a valid example."""

    code = "config"


class StoreUnavailable(OdnosError):
    """The event store cannot be reached or opened; the message says how to fix it."""

    status = 503
    code = "store_unavailable"


class QueryError(OdnosError):
    """The event store rejected a query."""

    code = "query"


class RowsRejected(QueryError):
    """The event store refused the inserted rows themselves (unparsable, wrong type): a retry cannot help.

    ``server_message`` is the store's own text; ``row`` the 1-based row of the insert it named, if any.
    Anything else an insert raises (unreachable, timeout, memory, missing table) may pass, and is retried.
    """

    code = "rows_rejected"

    def __init__(self, message: str, *, server_message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.server_message = server_message
        self.row = row


class InvalidToken(OdnosError):
    """A signed token is tampered, truncated, expired, foreign or of the wrong kind."""

    code = "bad_token"


class NotFound(OdnosError):
    status = 404
    code = "not_found"
