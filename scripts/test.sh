#!/usr/bin/env bash
# The Quick start's second line: set-up (with brokers), lint, type checks, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --brokers
export PATH="$HOME/.local/bin:$PATH"
pnpm lint
# Changesets must parse (a formatter once broke their front matter).
pnpm exec changeset status >/dev/null
pnpm typecheck
pnpm test
