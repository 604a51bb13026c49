import { type Limits, ulimitScript } from './limits.js';
import { SHELL_REAP } from './process-reaper.js';

/** The wrapper's exit code when the step's limits cannot be set (the step never ran). */
export const LIMITS_REFUSED_EXIT = 125;

/** The fd of the gate: the worker writes `go` on it once the wrapper is in its cgroup. */
export const GATE_FD = 4;

/**
 * The step runs as `sh -c <command>` in its own process group, started through this
 * wrapper (`$1` the command, `$2` the step's token, `$3` its cgroup or empty), which first
 * leaves a watchdog in that group. The watchdog blocks reading fd 3, a pipe whose other
 * end only the worker holds: when the worker dies, even by SIGKILL, the read ends at once
 * and the watchdog kills every process that carries the step's token (those that left the
 * group too), then the step's cgroup, then the whole group, so no step outlives its
 * worker. The double fork keeps the watchdog from being a child that the step's own
 * `wait` would wait for. It forks before the limits are set, so they never keep it from
 * its scan; the token is exported after it, so it never finds itself.
 *
 * `gated` (a cgroup): the wrapper then waits for `go` on fd 4 before anything of the step
 * runs, so that the worker has moved it into the step's cgroup (the step's user could not
 * move itself). The watchdog forks before the gate and stays out of the cgroup: it is not
 * counted in `pids.max`, and it outlives its own write to `cgroup.kill`, so it can remove
 * the emptied cgroup when it may (the same user as the worker).
 *
 * `merged`: stderr joins stdout, so one pipe carries both, interleaved as produced.
 */
export function wrapperScript(options: {
  limits: Limits;
  merged: boolean;
  gated?: boolean;
}): string {
  const ulimits = ulimitScript(options.limits);
  const killCgroup =
    '[ -z "$3" ] || { echo 1 > "$3/cgroup.kill"; i=0; ' +
    'while [ $i -lt 50 ] && grep -qx "populated 1" "$3/cgroup.events"; do i=$((i+1)); sleep 0.1; done; ' +
    'rmdir "$3"; }';
  return [
    ...(options.merged ? ['exec 2>&1'] : []),
    `( ( read -r _ <&3; ${SHELL_REAP}; ${killCgroup}; kill -KILL 0 ) >/dev/null 2>&1 </dev/null ${GATE_FD}<&- & )`,
    ...(options.gated ? [`read -r _ <&${GATE_FD} || exit 1`, `exec ${GATE_FD}<&-`] : []),
    ...(ulimits
      ? [
          `{ ${ulimits}; } || { echo "jw: cannot set the step's limits" >&2; exit ${LIMITS_REFUSED_EXIT}; }`,
        ]
      : []),
    'export JW_STEP_TOKEN="$2"',
    'exec /bin/sh -c "$1" </dev/null 3<&-',
  ].join('\n');
}
