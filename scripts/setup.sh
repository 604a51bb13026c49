#!/usr/bin/env bash
# Prepares a fresh machine (Debian, Node >= 20.19 with npm): pnpm, dependencies, build.
# With --brokers it also installs mosquitto, nats-server, redis-server (and openssl) from Debian's packages
# when they are missing (the tests start their own private instances).
set -euo pipefail
cd "$(dirname "$0")/.."

node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error("jw needs Node >= 20.19, found "+process.version); process.exit(1) }'

PNPM_VERSION=$(node -p 'require("./package.json").packageManager.split("@")[1]')
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  echo "setup: installing pnpm $PNPM_VERSION" >&2
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null 2>&1 || {
    # No write access to npm's global prefix: use a user prefix on PATH.
    npm install -g --prefix "$HOME/.local" "pnpm@$PNPM_VERSION" >/dev/null
    export PATH="$HOME/.local/bin:$PATH"
  }
fi

if [ "${1:-}" = "--brokers" ]; then
  missing=()
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
  command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
  # The Redis example transport's tests (examples/redis-transport).
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  # The bench's fair copy-back baseline.
  command -v rsync >/dev/null 2>&1 || missing+=(rsync)
  # The broker fixtures make TLS certificates and line-buffer mosquitto_sub.
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v stdbuf >/dev/null 2>&1 || missing+=(coreutils)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]} from Debian's packages" >&2
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The packages start system services on the standard ports; the tests need none of them.
  fi
fi

# Say what takes the time: a first run downloads the dependencies (about a minute) and builds.
step() { printf 'setup: %s… ' "$1" >&2; SECONDS=0; }
done_() { printf 'done (%ss)\n' "$SECONDS" >&2; }
step "installing dependencies with pnpm (first run: about a minute)"
pnpm install --frozen-lockfile --reporter=silent
done_
step "building every package (first run: about a minute; cached after)"
if ! out=$(pnpm run build 2>&1); then
  printf 'failed\n%s\n' "$out" >&2
  exit 1
fi
done_
