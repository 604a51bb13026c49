import { type Limits, ulimitScript } from './limits.js';
import { SHELL_REAP } from './process-reaper.js';

/** The wrapper's exit code when the step's limits cannot be set (the step never ran). */
export const LIMITS_REFUSED_EXIT = 125;

/**
 * The step runs as `sh -c <command>` in its own process group, started through this
 * wrapper (`$1` the command, `$2` the step's token), which first leaves a watchdog in
 * that group. The watchdog blocks reading fd 3, a pipe whose other end only the worker
 * holds: when the worker dies, even by SIGKILL, the read ends at once and the watchdog
 * kills every process that carries the step's token (those that left the group too),
 * then the whole group, so no step outlives its worker. The double fork keeps the
 * watchdog from being a child that the step's own `wait` would wait for. It forks before
 * the limits are set, so they never keep it from its scan; the token is exported after
 * it, so it never finds itself.
 *
 * `merged`: stderr joins stdout, so one pipe carries both, interleaved as produced.
 */
export function wrapperScript(options: { limits: Limits; merged: boolean }): string {
  const ulimits = ulimitScript(options.limits);
  return [
    ...(options.merged ? ['exec 2>&1'] : []),
    `( ( read -r _ <&3; ${SHELL_REAP}; kill -KILL 0 ) >/dev/null 2>&1 </dev/null & )`,
    ...(ulimits
      ? [
          `{ ${ulimits}; } || { echo "jw: cannot set the step's limits" >&2; exit ${LIMITS_REFUSED_EXIT}; }`,
        ]
      : []),
    'export JW_STEP_TOKEN="$2"',
    'exec /bin/sh -c "$1" </dev/null 3<&-',
  ].join('\n');
}
