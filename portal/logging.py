"""Log filter that keeps the OneOffice API key out of every log line."""

import logging

from django.conf import settings

REDACTED = "[redacted]"


class RedactSecretsFilter(logging.Filter):
    """Replace the API key wherever it appears in a record's message or arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        key = getattr(settings, "ONEOFFICE_API_KEY", "")
        if key and len(key) >= 8:
            message = record.getMessage()
            if key in message:
                record.msg = message.replace(key, REDACTED)
                record.args = None
        return True


class NoClientErrorTracebackFilter(logging.Filter):
    """A 403 or 404 is the user's answer, not a fault: log its line, not its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and 400 <= getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True
