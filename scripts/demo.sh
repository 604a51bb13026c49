#!/usr/bin/env bash
# The Quick start's first line: a file worker in the background (no broker), then
# `jw submit examples/jobs/hello --follow`, which prints the steps' output as they run.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.local/bin:$PATH"

demo=.demo
rm -rf "$demo"
mkdir -p "$demo/jobs"

echo "demo: starting a file worker on $demo/queue (logs in $demo/worker.log)" >&2
node apps/file-worker/dist/main.cjs \
  --jobs-dir "$demo/jobs" --workspaces-dir "$demo/workspaces" --queue-dir "$demo/queue" \
  --max-jobs 0 --idle-timeout 0 --log-format json 2>"$demo/worker.log" &
worker=$!
trap 'kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null || true' EXIT

# The worker is ready once it has written its heartbeat into the queue (a second or two).
for _ in $(seq 1 600); do
  if ls "$demo"/queue/workers/*.json >/dev/null 2>&1; then break; fi
  if ! kill -0 "$worker" 2>/dev/null; then
    echo "demo: the file worker exited; its log:" >&2
    cat "$demo/worker.log" >&2
    exit 1
  fi
  sleep 0.1
done

echo "demo: jw submit examples/jobs/hello --follow" >&2
status=0
node packages/client/dist/main.js submit examples/jobs/hello --id hello \
  --jobs-dir "$demo/jobs" --via "file:$demo/queue" --follow --timeout 2m || status=$?

results="$demo/jobs/hello/results"
echo
echo "Result message:  $demo/queue/results/hello.json"
cat "$demo/queue/results/hello.json"
echo "Job results in:  $results"
(cd "$results" && find . -type f | sort | sed 's|^\./|  |')
exit "$status"
