"""The call id in every log line: a context variable set on each call's thread, read by a log filter.

The brain's work for a call runs as asyncio tasks submitted from the call's own thread, and a task
copies the submitting thread's context, so its lines carry the call id too.
"""

from __future__ import annotations

import contextvars
import logging

CALL_ID: contextvars.ContextVar[str] = contextvars.ContextVar("call_id", default="-")

LOG_FORMAT = "%(asctime)s %(levelname)s [%(call_id)s] %(name)s: %(message)s"


class CallIdFilter(logging.Filter):
    """Adds ``record.call_id`` (``-`` outside a call) so formats can use it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.call_id = CALL_ID.get()
        return True


def install(handler: logging.Handler) -> None:
    handler.addFilter(CallIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
