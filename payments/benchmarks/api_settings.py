"""Settings for the gunicorn that `manage.py benchmark api` starts: the project's, plus the bare endpoint."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "payments.benchmarks.api_urls"
