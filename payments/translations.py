"""The translation catalogues: compiled from the committed .po files, never committed as .mo.

English is the source language; every other language is a ``locale/<ll>/LC_MESSAGES/django.po``
catalogue. The binary ``.mo`` files Django reads are built from them by ``manage.py
compile_translations`` (run by ``make run``, ``make test`` and the test suite's start-up), in
pure Python with polib, so that no machine needs GNU gettext to run PayDesk. GNU gettext
(``xgettext``, ``msgfmt``) is only needed to *update* a catalogue (``makemessages``) and by
CI's checks.
"""

from __future__ import annotations

from pathlib import Path

import polib
from django.conf import settings


def catalogue_paths() -> list[Path]:
    """Return every .po file under the project's LOCALE_PATHS."""
    found: list[Path] = []
    for base in settings.LOCALE_PATHS:
        found.extend(sorted(Path(base).glob("*/LC_MESSAGES/*.po")))
    return found


def compile_catalogues(*, force: bool = False) -> list[Path]:
    """Write the .mo beside each .po that is newer than it (or all with ``force``).

    Return the .mo files written. Fuzzy entries are left out, as msgfmt does.
    """
    written: list[Path] = []
    for po_path in catalogue_paths():
        mo_path = po_path.with_suffix(".mo")
        if not force and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        catalogue = polib.pofile(str(po_path))
        tmp = mo_path.with_suffix(".mo.tmp")
        catalogue.save_as_mofile(str(tmp))
        # Atomic: a process reading the catalogue never sees half a file.
        tmp.replace(mo_path)
        written.append(mo_path)
    return written
