#!/usr/bin/env bash
# The Quick start's second line: set-up (with brokers), lint, type checks, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --brokers
export PATH="$HOME/.local/bin:$PATH"
echo "test: lint (biome) and README links" >&2
pnpm --silent lint
node scripts/check-links.mjs >/dev/null
# Changesets must parse (a formatter once broke their front matter).
pnpm exec changeset status >/dev/null
echo "test: type checks" >&2
pnpm --silent typecheck
echo "test: every package's tests (private brokers on free ports; about 5 minutes)" >&2
pnpm --silent test
