#!/usr/bin/env python
import os
import sys
from pathlib import Path

# A checkout with no production configuration at all (no .env, no DATABASE_URL, no
# ONEOFFICE_URL) is a developer's: its commands run with the local defaults, as `make run`
# does. Anything configured keeps settings' own default, DJANGO_DEBUG off.
_CONFIGURED = ("DJANGO_DEBUG", "DATABASE_URL", "ONEOFFICE_URL")

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    local = not (Path(__file__).resolve().parent / ".env").exists()
    if local and not any(name in os.environ for name in _CONFIGURED):
        os.environ["DJANGO_DEBUG"] = "on"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
