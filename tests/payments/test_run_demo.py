"""run_demo is the development server's supervisor: it refuses to run with DEBUG off.

`make run` as a whole (steps, the start-up block, Ctrl-C and SIGTERM) is tested in tests/test_make_run.py.
"""

import pytest
from django.core.management import CommandError, call_command


def test_run_demo_refuses_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="gunicorn"):
        call_command("run_demo", "--port", "1")
