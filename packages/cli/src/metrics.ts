import type { Worker, WorkerObserver } from '@jw/core';

/** Seconds: from a quick step to a long build. */
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

export interface WorkerMetrics {
  /** Feeds the metrics from the worker's work; pass it to `createWorker`. */
  readonly observer: WorkerObserver;
  /** Counts the worker's results and reads its state when scraped. */
  attach(worker: Worker, connected?: () => boolean | undefined): void;
  /** The Prometheus text exposition of every metric. */
  render(): Promise<{ contentType: string; body: string }>;
}

/**
 * The worker's Prometheus metrics (SPEC 11; every one is in docs/spec.md). prom-client
 * is imported here, on demand: a worker without a health port never loads it.
 */
export async function createWorkerMetrics(app: {
  name: string;
  version: string;
}): Promise<WorkerMetrics> {
  // A CommonJS module: its exports are the default export, bundled or not.
  const prom = (await import('prom-client')).default;
  const register = new prom.Registry();
  prom.collectDefaultMetrics({ register });
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new prom.Counter({ name, help, labelNames, registers: [register] });
  const histogram = (name: string, help: string, labelNames: string[] = []) =>
    new prom.Histogram({
      name,
      help,
      labelNames,
      buckets: DURATION_BUCKETS,
      registers: [register],
    });
  const gauge = (name: string, help: string, labelNames: string[] = []) =>
    new prom.Gauge({ name, help, labelNames, registers: [register] });

  const info = gauge('jw_worker_info', 'Always 1; labels say which worker this is', [
    'app',
    'version',
    'worker',
    'transport',
  ]);
  const finished = counter('jw_jobs_finished_total', 'Jobs that ended, by final status', [
    'status',
  ]);
  const jobDuration = histogram('jw_job_duration_seconds', 'Attempts from claim to end', [
    'status',
  ]);
  const stepDuration = histogram('jw_step_duration_seconds', 'Steps, by their status', ['status']);
  const stageDuration = histogram('jw_stage_duration_seconds', 'Staging of job dirs', ['result']);
  const stageBytes = counter('jw_stage_bytes_total', 'Bytes copied into workspaces');
  const stageFiles = counter('jw_stage_files_total', 'Files copied into workspaces');
  const syncDuration = histogram('jw_sync_duration_seconds', 'Artifact syncs', ['result']);
  const syncBytes = counter('jw_sync_bytes_total', 'Bytes of artifacts written to results/');
  const syncFiles = counter('jw_sync_files_total', 'Artifacts written to results/');
  const running = gauge('jw_jobs_running', 'Attempts running now');
  const rejected = counter('jw_deliveries_rejected_total', 'Deliveries refused for good', [
    'reason',
  ]);
  const released = counter('jw_deliveries_released_total', 'Deliveries given back', ['reason']);
  const waiting = gauge('jw_results_waiting', 'Result messages not yet taken by the transport');
  const recoveries = counter(
    'jw_recoveries_total',
    'Attempts that took over the expired claim of a worker that died',
  );
  let readConnected: (() => boolean | undefined) | undefined;
  new prom.Gauge({
    name: 'jw_broker_connected',
    help: '1 while connected to the broker or backend, else 0',
    registers: [register],
    // Read when scraped, so the figure is never stale.
    collect() {
      const up = readConnected?.();
      if (up !== undefined) this.set(up ? 1 : 0);
    },
  });

  const seconds = (ms: number) => ms / 1000;
  const observer: WorkerObserver = {
    attempt(start) {
      running.inc();
      if (start.recovered) recoveries.inc();
      return {
        stage: () => ({
          end(r) {
            stageDuration.observe({ result: r.errorCode ? 'error' : 'ok' }, seconds(r.durationMs));
            stageBytes.inc(r.bytes);
            stageFiles.inc(r.files);
          },
        }),
        sync: () => ({
          end(r) {
            syncDuration.observe({ result: r.errorCode ? 'error' : 'ok' }, seconds(r.durationMs));
            syncBytes.inc(r.bytes);
            syncFiles.inc(r.files);
          },
        }),
        step: () => ({
          end(r) {
            stepDuration.observe({ status: r.status }, seconds(r.durationMs));
          },
        }),
        end(r) {
          running.dec();
          jobDuration.observe({ status: r.status }, seconds(r.durationMs));
        },
      };
    },
    rejected: (reason) => rejected.inc({ reason }),
    released: (reason) => released.inc({ reason }),
    resultWaiting: (delta) => waiting.inc(delta),
  };

  return {
    observer,
    attach(worker, connected) {
      info.set(
        {
          app: app.name,
          version: app.version,
          worker: worker.info.id,
          transport: worker.info.transport,
        },
        1,
      );
      // A replayed result is a job that had finished before: counted when it did.
      worker.on('result', (result) => {
        if (!result.replayed) finished.inc({ status: result.status });
      });
      // A transport without a broker (a folder) has no such state to show.
      if (connected) readConnected = connected;
      else register.removeSingleMetric('jw_broker_connected');
    },
    async render() {
      return { contentType: register.contentType, body: await register.metrics() };
    },
  };
}
