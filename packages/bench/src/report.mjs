// One JSON line per measure on stdout, a table for people on stderr at the end.
const measures = [];

const round = (x) => (x === null || x === undefined ? null : Number(x.toPrecision(4)));

/**
 * goal: { ratioAtMost } | { ratioAtLeast } | { atMost } (in the measure's unit) |
 * { overBaselineAtMost } (value − baseline, in the unit). No goal: reported only.
 */
export function measure({ name, value, unit, baseline = null, baselineValue = null, goal, note }) {
  const ratio = baselineValue ? value / baselineValue : null;
  let goalText = null;
  let ok = null;
  if (goal?.ratioAtMost !== undefined) {
    goalText = `≤ ${goal.ratioAtMost}× baseline`;
    ok = ratio !== null && ratio <= goal.ratioAtMost;
  } else if (goal?.ratioAtLeast !== undefined) {
    goalText = `≥ ${goal.ratioAtLeast}× baseline`;
    ok = ratio !== null && ratio >= goal.ratioAtLeast;
  } else if (goal?.atMost !== undefined) {
    goalText = `≤ ${goal.atMost} ${unit}`;
    ok = value <= goal.atMost;
  } else if (goal?.overBaselineAtMost !== undefined) {
    goalText = `≤ baseline + ${goal.overBaselineAtMost} ${unit}`;
    ok = baselineValue !== null && value <= baselineValue + goal.overBaselineAtMost;
  }
  const m = {
    name,
    value: round(value),
    unit,
    baseline,
    baselineValue: round(baselineValue),
    ratio: round(ratio),
    goal: goalText,
    ok,
    ...(note ? { note } : {}),
  };
  measures.push(m);
  process.stdout.write(`${JSON.stringify(m)}\n`);
  return m;
}

/** A section that failed is reported, and the others still run. */
export function failed(section, error) {
  const m = {
    name: section,
    error: String(error?.stack ?? error)
      .split('\n')
      .slice(0, 6)
      .join('\n'),
  };
  measures.push(m);
  process.stderr.write(`bench: ${section} failed: ${m.error}\n`);
}

export function printTable() {
  const rows = measures.map((m) =>
    m.error
      ? [m.name, 'FAILED', '', '', '', '']
      : [
          m.name,
          `${m.value} ${m.unit}`,
          m.baseline ? `${m.baselineValue} ${m.unit} (${m.baseline})` : '',
          m.ratio === null ? '' : `${m.ratio.toFixed(2)}×`,
          m.goal ?? '',
          m.ok === null ? '' : m.ok ? 'ok' : 'MISSED',
        ],
  );
  const head = ['measure', 'jw', 'baseline', 'ratio', 'goal', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  const out = [
    line(head),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
  ];
  const missed = measures.filter((m) => m.ok === false).length;
  const errors = measures.filter((m) => m.error).length;
  out.push(
    '',
    `${measures.length} measures, ${missed} goals missed${errors ? `, ${errors} sections failed` : ''}`,
  );
  process.stderr.write(`\n${out.join('\n')}\n`);
}
