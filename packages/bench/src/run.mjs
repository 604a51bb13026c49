// pnpm bench: every figure is a ratio against a named baseline measured in the same run,
// contenders taking turns (the order rotated every round), medians reported. One JSON
// line per measure on stdout, then a table on stderr. Exits 0 when a goal is missed: it
// reports. Flags: --quick (a two-minute pass), --only=a,b.
// Env: BENCH_ROUNDS (default 5, --quick 3), BENCH_APPS (another build of apps/).
process.env.UV_THREADPOOL_SIZE ??= '16';

const { startMosquitto, startNats } = await import('./brokers.mjs');
const { installSize } = await import('./measures/install.mjs');
const jobs = await import('./measures/jobs.mjs');
const { maskedLog } = await import('./measures/masking.mjs');
const transports = await import('./measures/transports.mjs');
const { failed, printTable } = await import('./report.mjs');
const { cleanupAll, run } = await import('./util.mjs');

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const rounds = Number(process.env.BENCH_ROUNDS ?? (quick ? 3 : 5));
const ctx = { cfg: { quick, rounds } };

const sections = {
  version: jobs.versionCpu,
  latency: transports.latency,
  'cold-start': transports.coldStart,
  'idle-rss': transports.idleRss,
  throughput: transports.throughput,
  'small-job': jobs.smallJob,
  staging: jobs.staging,
  'big-tree': jobs.bigTrees,
  'log-flood': jobs.floodLog,
  'masked-log': maskedLog,
  install: installSize,
};

async function ensureRsync() {
  if (
    await run('rsync', ['--version']).then(
      () => true,
      () => false,
    )
  )
    return;
  process.stderr.write('bench: rsync missing, installing it from Debian\n');
  await run('apt-get', ['install', '-y', '-qq', 'rsync']).catch(async () => {
    await run('apt-get', ['update', '-qq']);
    await run('apt-get', ['install', '-y', '-qq', 'rsync']);
  });
}

const stop = () => void cleanupAll().then(() => process.exit(130));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
try {
  await ensureRsync();
  ctx.nats = await startNats();
  ctx.mosquitto = await startMosquitto();
  for (const [name, section] of Object.entries(sections)) {
    if (only && !only.includes(name)) continue;
    const t = Date.now();
    process.stderr.write(`bench: ${name}…\n`);
    try {
      await section(ctx);
    } catch (error) {
      failed(name, error);
    }
    process.stderr.write(`bench: ${name} took ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
  }
} catch (error) {
  failed('setup', error);
} finally {
  await cleanupAll();
}
printTable();
