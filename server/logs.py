"""Log line format: plain text for people, or one JSON object per line (``log_format = "json"``)
for log shippers (``python-json-logger``)."""
from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(name)s %(message)s"


def configure_logging(log_format: str) -> None:
    """Format every handler of the root logger as ``text`` or ``json`` (time, level, logger, message)."""
    formatter: logging.Formatter = (
        JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                      rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})
        if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
