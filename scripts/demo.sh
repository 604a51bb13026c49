#!/usr/bin/env bash
# The Quick start's first line: runs examples/jobs/hello with the file worker, no broker.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.local/bin:$PATH"

demo=.demo
rm -rf "$demo"
mkdir -p "$demo/jobs" "$demo/queue/pending"
cp -R examples/jobs/hello "$demo/jobs/hello"
cp examples/requests/hello.json "$demo/queue/pending/hello.json"

node apps/file-worker/dist/main.js \
  --jobs-dir "$demo/jobs" --workspaces-dir "$demo/workspaces" --queue-dir "$demo/queue" \
  --max-jobs 1 --idle-timeout 60 --log-format pretty

results="$demo/jobs/hello/results"
echo
echo "Result message:  $demo/queue/results/hello.json"
cat "$demo/queue/results/hello.json"
echo "Job results in:  $results"
(cd "$results" && find . -type f | sort | sed 's|^\./|  |')
