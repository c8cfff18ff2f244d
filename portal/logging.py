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
