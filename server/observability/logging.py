"""structlog configuration: one JSON object per line, carrying the request id."""

from __future__ import annotations

import logging

import structlog


def configure_logging(level: str = "INFO", json_output: bool = True) -> None:
    """Idempotent; every log line merges the request's contextvars (request_id, user...)."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        # No file argument: each line goes to sys.stdout as it is when the line is written.
        # A stdout captured at configure time may be closed later (a test runner's capture,
        # a redirected stream), and a log call in an error handler must not raise.
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )
