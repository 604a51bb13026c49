// Turns the ledger, the kills and the controller's counts into the report's figures.

/**
 * @typedef {{ id: string, attempt: string, incarnation: string, shellPid: number,
 *   start: number, end: number | undefined }} StepRun
 */

/** Ledger lines `start|end ID ATTEMPT INCARNATION SHELLPID NANOS` → runs (times in ms). */
export function parseLedger(text) {
  /** @type {Map<string, StepRun>} */
  const byKey = new Map();
  /** @type {StepRun[]} */
  const starts = [];
  for (const line of text.split('\n')) {
    const m = /^(start|end) (\S+) (\S+) (\S+) (\d+) (\d+)$/.exec(line.trim());
    if (!m) continue;
    const [, kind, id, attempt, incarnation, shellPid, nanos] = m;
    const at = Number(BigInt(nanos) / 1000n) / 1000;
    const key = `${id} ${incarnation} ${shellPid}`;
    if (kind === 'start') {
      const run = {
        id,
        attempt,
        incarnation,
        shellPid: Number(shellPid),
        start: at,
        end: undefined,
      };
      byKey.set(key, run);
      starts.push(run);
    } else {
      const run = byKey.get(key);
      if (run) run.end = at;
    }
  }
  return {
    starts,
    ended: (run) => run.end !== undefined,
    ids: () => [...new Set(starts.map((r) => r.id))],
  };
}

export function median(values) {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const max = (values) => (values.length === 0 ? undefined : Math.max(...values));

/** The figures of one transport's run. */
export function analyse({
  name,
  ids,
  runs,
  kills,
  supervisor,
  results,
  leftovers,
  brokerRestarts,
  orphans,
  timing,
}) {
  const byJob = new Map(ids.map((id) => [id, []]));
  for (const run of runs.starts) byJob.get(run.id)?.push(run);

  const killOf = new Map(kills.map((k) => [k.incarnation, k]));
  // When a run's processes were gone for sure: its end line, else its worker's death
  // (the kill, or the last time the ps scan still saw one of its processes).
  const deathOf = (run) => {
    if (run.end !== undefined) return run.end;
    const kill = killOf.get(run.incarnation);
    if (kill) return Math.max(kill.at, kill.survivorsResult?.lastSeen ?? 0);
    const inc = supervisor.byName(run.incarnation);
    return inc?.exitedAt ?? Number.POSITIVE_INFINITY;
  };

  let overlapping = 0;
  const overlaps = [];
  let reRuns = 0;
  for (const [id, list] of byJob) {
    if (list.length > 1) reRuns += list.length - 1;
    const sorted = [...list].sort((a, b) => a.start - b.start);
    let until = Number.NEGATIVE_INFINITY;
    let holder;
    let counted = false;
    for (const run of sorted) {
      if (run.start < until) {
        if (!counted) overlapping++;
        counted = true;
        overlaps.push({
          id,
          first: holder.incarnation,
          second: run.incarnation,
          overlapMs: Math.round(until - run.start),
        });
      }
      const d = deathOf(run);
      if (d > until) {
        until = d;
        holder = run;
      }
    }
  }

  const final = leftovers.finalStatus;
  const lost = ids.filter((id) => !final.has(id) && !results.has(id));
  const missing = ids.filter((id) => final.has(id) && !results.has(id));
  const notSuccess = ids.filter((id) => final.has(id) && final.get(id) !== 'success');
  let duplicates = 0;
  for (const n of results.counts.values()) if (n > 1) duplicates += n - 1;

  // Recovery: from a kill to the next start of each job the killed worker held.
  const recoveries = [];
  let withoutRerun = 0;
  const unrecovered = [];
  const ranOn = [];
  let endedAfterKill = 0;
  const aliveMs = [];
  let killsWithSurvivors = 0;
  for (const kill of kills) {
    const held = new Set(kill.claims);
    for (const run of runs.starts) {
      if (run.incarnation !== kill.incarnation || run.start > kill.at) continue;
      if (run.end === undefined || run.end > kill.at) held.add(run.id);
      if (run.end !== undefined && run.end > kill.at) {
        endedAfterKill++;
        if (run.end > kill.at + 1000)
          ranOn.push({
            id: run.id,
            incarnation: run.incarnation,
            afterKillMs: Math.round(run.end - kill.at),
          });
      }
    }
    for (const id of held) {
      const next = (byJob.get(id) ?? [])
        .filter((r) => r.incarnation !== kill.incarnation && r.start > kill.at)
        .sort((a, b) => a.start - b.start)[0];
      if (next) recoveries.push(next.start - kill.at);
      else if (final.has(id) && results.has(id)) withoutRerun++;
      else unrecovered.push(id);
    }
    // Alive for at least as long as the ps scan saw one, or one wrote its end line.
    const seen = kill.survivorsResult?.lastSeen;
    const lastEnd = Math.max(
      0,
      ...runs.starts
        .filter((r) => r.incarnation === kill.incarnation && r.end !== undefined)
        .map((r) => r.end - kill.at),
    );
    const alive = Math.max(seen === undefined ? 0 : seen - kill.at, lastEnd);
    aliveMs.push(alive);
    if (alive > 1000) killsWithSurvivors++;
  }

  const incs = supervisor.incarnations;
  // Exits before the harness stopped the workers that were not its kills: crashes.
  const stopAt = timing.drainEnd || Number.POSITIVE_INFINITY;
  const crashes = incs.filter(
    (i) => i.exitedAt !== undefined && i.killedAt === undefined && i.exitedAt < stopAt,
  );
  return {
    transport: name,
    jobs: ids.length,
    finished: results.finished,
    lost: lost.length,
    notSuccess: notSuccess.length,
    overlapping,
    reRuns,
    duplicateResults: duplicates,
    missingResults: missing.length,
    resultMessages: results.total,
    kills: kills.length,
    brokerRestarts: brokerRestarts.length,
    workerStarts: incs.length,
    workerExitsNotKilled: crashes.length,
    recovery: {
      n: recoveries.length,
      medianMs: median(recoveries),
      maxMs: max(recoveries),
      withoutRerun,
      unrecovered: unrecovered.length,
    },
    aliveAfterKill: {
      killsWithSurvivors,
      medianMs: median(aliveMs),
      maxMs: max(aliveMs),
      stepsRanOn: ranOn.length,
      stepsEndedAfterKill: endedAfterKill,
    },
    leftovers: {
      workspaces: leftovers.workspaces.length,
      claimsBesideResult: leftovers.claimsBesideResult.length,
      otherClaims: leftovers.otherClaims.length,
      tempFiles: leftovers.tempFiles.length,
      processing: leftovers.processing.length,
      total:
        leftovers.workspaces.length +
        leftovers.claimsBesideResult.length +
        leftovers.tempFiles.length +
        leftovers.processing.length,
    },
    processesLeftAtEnd: orphans,
    durationMs: timing.endedAt - timing.startedAt,
    details: {
      lost,
      missing,
      notSuccess: notSuccess.map((id) => [id, final.get(id)]),
      overlaps,
      unrecovered,
      ranOn,
      duplicates: [...results.counts].filter(([, n]) => n > 1),
      kills: kills.map((k) => ({
        incarnation: k.incarnation,
        at: new Date(k.at).toISOString(),
        held: k.claims,
        survivorPids: k.survivorsResult?.pids ?? [],
        aliveMs:
          k.survivorsResult?.lastSeen === undefined
            ? 0
            : Math.round(k.survivorsResult.lastSeen - k.at),
      })),
      workerExits: crashes.map((i) => ({
        incarnation: i.name,
        exit: i.exit,
        at: new Date(i.exitedAt).toISOString(),
      })),
      brokerRestarts: brokerRestarts.map((b) => ({
        at: new Date(b.at).toISOString(),
        downMs: b.upAt - b.at,
      })),
      leftovers: {
        workspaces: leftovers.workspaces,
        claimsBesideResult: leftovers.claimsBesideResult,
        otherClaims: leftovers.otherClaims,
        tempFiles: leftovers.tempFiles,
        processing: leftovers.processing,
      },
    },
  };
}
