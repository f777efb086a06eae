# shellcheck shell=sh
# The environment every CI step runs in, so that one commit gives one result (docs/operations.md,
# "Replaying a CI failure"). Sourced by .ci/run and by `make test`; source it yourself to replay a
# step by hand: `. .ci/env.sh`.
# - Python's str hashes (set and dict-of-set orders) are the same in every process and every run.
export PYTHONHASHSEED=0
# - Local time and locale do not depend on the machine.
export TZ=UTC
export LC_ALL=C.UTF-8
export LANG=C.UTF-8
# - tests/conftest.py loads the Hypothesis profile "ci" (derandomized, no example database, no
#   deadline, a fixed number of examples) when CI is set.
export CI="${CI:-1}"
# - Schemathesis: a fixed seed and deterministic generation (.ci/schemathesis.toml); override the
#   seed with SCHEMATHESIS_SEED to explore, never in CI.
export SCHEMATHESIS_SEED="${SCHEMATHESIS_SEED:-20261128}"
