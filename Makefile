# PayDesk: `make run` for the demo, `make test` for the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# Each step prints what it is doing ("==> ..."), so that a first run (a minute or two of
# installing) never looks hung.

.PHONY: run test install install-dev messages migrate seed lint ci clean

# DEBUG is off unless set (config/settings.py): the demo and the suite turn it on.
run migrate seed messages: export DEBUG := 1
# Where the sandbox sends callbacks and its authentication page lives: this server, unless set.
run migrate seed: export PAYDESK_PUBLIC_URL ?= http://127.0.0.1:$(PORT)
test: export DEBUG := 1

$(VENV)/bin/activate:
	@printf '\n==> %s\n' "Creating the Python environment in $(VENV) ($(PYTHON))"
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip

$(VENV)/.installed: requirements.txt $(VENV)/bin/activate
	@printf '\n==> %s\n' "Installing PayDesk's requirements into $(VENV) (the first time takes a minute or two)"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	@printf '\n==> %s\n' "Installing the test tools"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The .mo catalogues are built from the committed .po files (pure Python, no GNU gettext needed).
messages: install
	@$(PY) manage.py compile_translations -v 0 >/dev/null

migrate: install messages
	@printf '\n==> %s\n' "Migrating the database"
	@$(PY) manage.py migrate --noinput -v 0

seed: migrate
	@printf '\n==> %s\n' "Seeding the demo merchant: logins, an API key, a few days of payments and batches"
	@LOG_LEVEL=WARNING $(PY) manage.py seed_demo -v 0

# Web server and one django-q2 worker together; Ctrl-C (or SIGTERM) stops both.
run: seed
	@printf '\n==> %s\n' "Starting the web server on port $(PORT) and one worker"
	@$(PY) manage.py run_demo --port $(PORT)

# .ci/env.sh: the fixed hash seed, time zone, locale (and, under CI, Hypothesis profile) of CI.
test: install-dev messages
	@printf '\n==> %s\n' "Running the test suite on SQLite"
	@. ./.ci/env.sh && $(PY) -m pytest -q -p no:cacheprovider -m "not e2e and not slow and not postgres"

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

ci:
	bash .ci/run

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* staticfiles .pytest_cache
