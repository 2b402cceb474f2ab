"""The model-call failures every provider raises, and how the activities hand them to Temporal.

Two families, whatever the server: the request itself is wrong (unknown model, a request the server
refuses, a missing key) and retrying cannot help, so the turn fails at once with the server's own
words; or the server is away or in trouble (refused connection, cut stream, 5xx, timeout, 429) and
Temporal retries. Providers raise these; they never raise their client library's errors.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError


class LlmError(RuntimeError):
    """A model call failed; ``retryable`` says whether trying again later may help."""

    retryable = True

    @property
    def type(self) -> str:
        return type(self).__name__

    def application_error(self) -> ApplicationError:
        """The activity's failure: the same type name and message, retryable or not."""
        return ApplicationError(str(self), type=self.type, non_retryable=not self.retryable)


class ModelNotFound(LlmError):
    """The server does not have this model (HTTP 404)."""

    retryable = False


class ModelBadRequest(LlmError):
    """The server refused the request (4xx other than 404, 408 and 429), or the worker is
    configured so that no request can succeed (an API key variable that is not set)."""

    retryable = False


class ModelUnreachable(LlmError):
    """Nothing answers at the server's address (connection refused, no route, DNS)."""


class ModelConnectionLost(LlmError):
    """The connection broke or timed out once the request was on its way."""


class ModelServerError(LlmError):
    """The server answered 5xx, 408 or 429: it is in trouble or busy, not the request."""


class ModelIncomplete(LlmError):
    """The stream ended without the server saying the answer was done."""


def for_status(status: int, message: str, not_found: str) -> LlmError:
    """The error for an HTTP status; ``not_found`` is the message to use for a 404 (it names the
    model and how to get it). Anything outside 4xx — 5xx, or an error the server wrote into a
    stream it had started with 200 — is server trouble."""
    if status == 404:
        return ModelNotFound(not_found)
    if 400 <= status < 500 and status not in (408, 429):
        return ModelBadRequest(message)
    return ModelServerError(message)
