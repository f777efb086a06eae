"""The zh-Hans catalogue is complete, consistent and up to date with the sources."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.utils import translation

from payments.checks import check_translations
from payments.translations import catalogue_paths, compile_catalogues

ROOT = Path(settings.BASE_DIR)
ZH_PO = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sdf]|%[sd]|\{[a-z_]*\}")
TAG = re.compile(r"</?[a-z]+[^>]*>")


def _entries():
    return [e for e in polib.pofile(str(ZH_PO)) if not e.obsolete]


def _label(entry) -> str:
    return repr(entry.msgid[:70])


def test_every_language_of_settings_has_a_catalogue():
    languages = {code for code, _ in settings.LANGUAGES} - {settings.LANGUAGE_CODE}
    found = {path.parent.parent.name.lower().replace("_", "-") for path in catalogue_paths()}
    assert languages <= found


def test_no_entry_is_untranslated_or_fuzzy():
    entries = _entries()
    assert len(entries) > 500
    untranslated = [_label(e) for e in entries if not e.translated()]
    fuzzy = [_label(e) for e in entries if "fuzzy" in e.flags]
    assert not untranslated, f"untranslated: {untranslated}"
    assert not fuzzy, f"fuzzy: {fuzzy}"


def test_translations_keep_the_placeholders_and_tags():
    wrong = []
    for e in _entries():
        forms = [e.msgstr] if not e.msgid_plural else list(e.msgstr_plural.values())
        for form in forms:
            for pattern in (PLACEHOLDER, TAG):
                source = pattern.findall(e.msgid_plural or e.msgid)
                if sorted(set(pattern.findall(form))) != sorted(set(source)):
                    wrong.append((_label(e), form))
    assert not wrong


def test_translations_are_chinese_where_the_source_is_words():
    """A msgstr copied from English (a translator's slip) is caught; names and codes may stay."""
    latin_only = re.compile(r"^[\x00-\x7f•]*$")
    kept = {"URL", "IBAN", "BIC", "PayPal", "Webhook", "Webhooks", "SMS", "UTF-8", "PayDesk"}
    copied = [
        _label(e)
        for e in _entries()
        if not e.msgid_plural and e.msgstr == e.msgid and latin_only.match(e.msgid) and e.msgid not in kept
    ]
    assert not copied


def test_makemessages_finds_no_msgid_missing_from_the_catalogue(tmp_path):
    """Run makemessages on a copy of the sources: every msgid it extracts is already in the catalogue."""
    if shutil.which("xgettext") is None:
        pytest.fail("GNU gettext (xgettext) is needed to check the catalogue: apt-get install gettext")
    copy = tmp_path / "src"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".*", "__pycache__", "media", "staticfiles", "db.sqlite3*", "*.mo", "tests"
        ),
    )
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "-v", "0"],
        cwd=copy,
        check=True,
        env={"DEBUG": "1", "PATH": "/usr/bin:/bin:/usr/local/bin"},
    )
    before = {(e.msgctxt, e.msgid) for e in _entries()}
    extracted = polib.pofile(str(copy / ZH_PO.relative_to(ROOT)))
    after = {(e.msgctxt, e.msgid) for e in extracted if not e.obsolete}
    new = sorted(m for _, m in after - before)
    stale = sorted(m for _, m in before - after)
    assert new == [], "run `manage.py makemessages` and translate the new entries"
    assert stale == [], "run `manage.py makemessages`: the catalogue has entries no source uses"


def test_compiled_catalogue_is_used():
    compile_catalogues()
    with translation.override("zh-hans"):
        assert translation.gettext("Payments") == "付款"
        assert translation.ngettext("%(n)s invalid", "%(n)s invalid", 3) % {"n": 3} == "3 行无效"


def test_a_missing_or_stale_compiled_catalogue_is_a_startup_warning(settings, tmp_path):
    po = tmp_path / "zh_Hans" / "LC_MESSAGES" / "django.po"
    po.parent.mkdir(parents=True)
    po.write_bytes(ZH_PO.read_bytes())
    settings.LOCALE_PATHS = [tmp_path]
    assert [m.id for m in check_translations()] == ["paydesk.W002"]
    compile_catalogues()
    assert check_translations() == []
    po.touch()
    mo = po.with_suffix(".mo")
    os.utime(mo, (po.stat().st_mtime - 10, po.stat().st_mtime - 10))
    assert [m.id for m in check_translations()] == ["paydesk.W002"]
