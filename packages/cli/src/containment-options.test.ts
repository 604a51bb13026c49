import { createMemoryTransport } from '@jw/core';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { containmentSettings } from './containment-settings.js';
import { EXIT, runApp, type WorkerApp } from './run-app.js';

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox();
});
afterEach(async () => {
  await box.cleanup();
});

const app: WorkerApp = {
  name: 'test-worker',
  version: '1.0.0',
  description: 'test',
  envPrefix: 'T',
  defaults: { maxJobs: 1 },
  createTransport: () => createMemoryTransport([{ id: 'a', steps: ['true'] }], { ended: true }),
};
const argv = (...args: string[]) => [
  'node',
  'test-worker',
  '--jobs-dir',
  box.jobsDir,
  '--workspaces-dir',
  box.workspacesDir,
  '--log-level',
  'silent',
  ...args,
];

describe('containment settings', () => {
  it('reads limit defaults and bounds from flags and prefixed env', async () => {
    expect(
      (await runApp(app, argv('--step-memory', '256'), { T_MAX_STEP_MEMORY: '512' })) === EXIT.OK,
    ).toBe(true);
    const settings = await containmentSettings({
      step_memoryMiB: 256,
      maxStep_memoryMiB: 512,
      maxStep_cpuSeconds: 60,
    });
    expect(settings.limits.defaults).toEqual({ memoryMiB: 256 });
    expect(settings.limits.max).toEqual({ memoryMiB: 512, cpuSeconds: 60 });
  });

  it('refuses a default above its bound, an unknown user and a root user (exit 2)', async () => {
    expect(await runApp(app, argv('--step-cpu', '10', '--max-step-cpu', '5'), {})).toBe(
      EXIT.BAD_SETTINGS,
    );
    expect(await runApp(app, argv('--run-as', 'no-such-user-jw'), {})).toBe(EXIT.BAD_SETTINGS);
    expect(await runApp(app, argv(), { JW_RUN_AS: 'root' })).toBe(EXIT.BAD_SETTINGS);
    expect(await runApp(app, argv('--step-cpu', '0'), {})).toBe(EXIT.BAD_SETTINGS);
  });

  it('refuses a --cgroup-parent that is not a cgroup v2 dir (exit 2), by flag or env', async () => {
    expect(await runApp(app, argv('--cgroup-parent', box.root), {})).toBe(EXIT.BAD_SETTINGS);
    expect(await runApp(app, argv(), { JW_CGROUP_PARENT: box.root })).toBe(EXIT.BAD_SETTINGS);
    await expect(containmentSettings({ cgroupParent: box.root })).rejects.toThrow(
      `--cgroup-parent ${box.root}: not a cgroup v2 directory`,
    );
  });
});
