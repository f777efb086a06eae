"""Django's makemessages with PayDesk's defaults, so every run (and CI's check) sees the same sources.

Tests, documentation, uploads and collected static files hold no user-facing strings; locations are
written per file, not per line, and lines are not wrapped, so that a catalogue changes only where
a message changes.
"""

from django.core.management.commands import makemessages

IGNORE_PATTERNS = ["tests/*", "docs/*", "media/*", "staticfiles/*", "locale/*", "node_modules/*"]


class Command(makemessages.Command):
    def handle(self, *args, **options):
        options["ignore_patterns"] = list(options.get("ignore_patterns") or []) + IGNORE_PATTERNS
        options["no_wrap"] = True
        options["no_obsolete"] = True
        options["add_location"] = options.get("add_location") or "file"
        if not options.get("locale") and not options.get("all") and not options.get("exclude"):
            options["all"] = True
        return super().handle(*args, **options)
