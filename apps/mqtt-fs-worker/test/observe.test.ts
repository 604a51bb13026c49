import { fileURLToPath } from 'node:url';
import { createSandbox, gate, type Sandbox, waitFor } from '@jw/testing/fs';
import {
  type Mosquitto,
  mosquittoPub,
  startMosquitto,
  type TopicWatch,
  watchTopics,
} from '@jw/testing/mosquitto';
import { type Spawned, spawnProcess } from '@jw/testing/process';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../dist/main.cjs', import.meta.url));

let broker: Mosquitto;
let sb: Sandbox;
let watch: TopicWatch;
let child: Spawned | undefined;

beforeAll(async () => {
  broker = await startMosquitto();
});
afterAll(async () => {
  await broker?.close();
});
beforeEach(async () => {
  sb = await createSandbox('jw-mqtt-observe-');
  watch = await watchTopics(broker.url, ['jobs/#']);
});
afterEach(async () => {
  if (child && child.child.exitCode === null && child.child.signalCode === null)
    child.kill('SIGKILL');
  await child?.exited;
  await watch.close();
  await sb.cleanup();
});

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('mqtt-fs-worker: progress and metrics', () => {
  it('publishes a step’s $JW_PROGRESS report on jobs/progress/{id}; /metrics shows the job and the connection', async () => {
    const g = gate(sb.root);
    await sb.makeJob('prog', {
      steps: [{ name: 'compile', run: `echo "50 halfway" >> "$JW_PROGRESS"; ${g.wait}` }],
    });
    child = spawnProcess(
      process.execPath,
      [BIN, '--max-jobs', '0', '--health-port', '0', '--id', 'observer'],
      {
        cwd: sb.root,
        env: {
          PATH: process.env.PATH,
          MQTT_URL: broker.url,
          MQTT_JOBS_DIR: sb.jobsDir,
          MQTT_WORKSPACES_DIR: sb.workspacesDir,
          LOG_FORMAT: 'json',
        },
      },
    );
    await child.waitForOutput('MQTT connected and subscribed');
    const port = Number(/health server on port (\d+)/.exec(child.stderr)![1]);
    await mosquittoPub(broker.url, 'jobs/pending', '{"id": "prog"}');
    const report = await watch.waitFor(
      (m) => m.topic === 'jobs/progress/prog' && m.payload.includes('"progress"'),
    );
    expect(JSON.parse(report.payload)).toMatchObject({
      state: 'running',
      progress: { percent: 50, message: 'halfway', step: { index: 0, name: 'compile' } },
    });
    await g.open();
    await watch.waitFor((m) => m.topic === 'jobs/results/prog');
    // The counters move once the result is delivered, a moment after a subscriber sees it.
    const text = await waitFor(async () => {
      const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return sample(body, 'jw_jobs_finished_total{status="success"}') === 1 ? body : undefined;
    });
    expect(sample(text, 'jw_jobs_finished_total{status="success"}')).toBe(1);
    expect(sample(text, 'jw_step_duration_seconds_count{status="success"}')).toBe(1);
    expect(sample(text, 'jw_broker_connected')).toBe(1);
    expect(text).toMatch(/^jw_worker_info\{.*transport="mqtt".*\} 1$/m);
    child.kill('SIGTERM');
    expect((await child.exited).code).toBe(0);
  });
});
