// The printed table: one row per transport.

const s = (ms) => (ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`);

export const COLUMNS = [
  ['transport', (r) => r.transport],
  ['jobs', (r) => String(r.jobs)],
  ['lost', (r) => String(r.lost)],
  ['not success', (r) => String(r.notSuccess)],
  ['overlapping', (r) => String(r.overlapping)],
  ['re-runs', (r) => String(r.reRuns)],
  ['dup results', (r) => String(r.duplicateResults)],
  ['missing results', (r) => String(r.missingResults)],
  [
    'recovery median / max (n)',
    (r) =>
      `${s(r.recovery.medianMs)} / ${s(r.recovery.maxMs)} (${r.recovery.n}${r.recovery.unrecovered ? `, ${r.recovery.unrecovered} never` : ''})`,
  ],
  [
    'leftovers ws/claim/tmp/proc',
    (r) =>
      `${r.leftovers.workspaces}/${r.leftovers.claimsBesideResult}/${r.leftovers.tempFiles}/${r.leftovers.processing}`,
  ],
  [
    'steps alive >1 s after kill (max)',
    (r) =>
      `${r.aliveAfterKill.killsWithSurvivors} of ${r.kills} (${s(r.aliveAfterKill.maxMs)}), ${r.aliveAfterKill.stepsRanOn} ran on`,
  ],
  ['kills / restarts', (r) => `${r.kills} / ${r.brokerRestarts}`],
  ['time', (r) => s(r.durationMs)],
];

/** A Markdown table (reads as a table in a terminal too). */
export function formatTable(reports) {
  const rows = [COLUMNS.map(([h]) => h), ...reports.map((r) => COLUMNS.map(([, f]) => f(r)))];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row) => `| ${row.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [
    line(rows[0]),
    `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`,
    ...rows.slice(1).map(line),
  ].join('\n');
}

/** The targets of issue 12: what must be zero (or short) for a transport to pass. */
export function failures(r) {
  const out = [];
  if (r.error) out.push(`run failed: ${r.error.split('\n')[0]}`);
  if (r.lost) out.push(`${r.lost} lost`);
  if (r.overlapping) out.push(`${r.overlapping} overlapping`);
  if (r.missingResults) out.push(`${r.missingResults} missing result messages`);
  if (r.leftovers.total) out.push(`${r.leftovers.total} leftovers`);
  if (r.aliveAfterKill.killsWithSurvivors || r.aliveAfterKill.stepsRanOn)
    out.push('steps alive more than 1 s after their worker’s kill');
  if (r.processesLeftAtEnd) out.push(`${r.processesLeftAtEnd} processes alive at the end`);
  if (r.recovery.medianMs !== undefined && r.recovery.medianMs >= 30_000)
    out.push('median recovery 30 s or more');
  return out;
}
