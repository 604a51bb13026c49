import { describe, expect, it } from 'vitest';
import { jobDefinitionSchema, jobJsonSchema, normalizeSteps } from './job-definition.js';

describe('job.json', () => {
  it('normalizes string, run and uses steps', () => {
    const def = jobDefinitionSchema.parse({
      steps: [
        'npm ci',
        {
          name: 'build',
          run: 'npm run build',
          timeoutSeconds: 5,
          continueOnError: true,
          cwd: 'sub',
        },
        { uses: 'http.post', with: { url: 'u' } },
      ],
    });
    expect(normalizeSteps(def.steps!)).toEqual([
      { index: 0, name: 'npm ci', run: 'npm ci', env: {}, continueOnError: false },
      {
        index: 1,
        name: 'build',
        run: 'npm run build',
        env: {},
        continueOnError: true,
        timeoutMs: 5000,
        cwd: 'sub',
      },
      {
        index: 2,
        name: 'http.post',
        uses: 'http.post',
        with: { url: 'u' },
        env: {},
        continueOnError: false,
      },
    ]);
  });

  it.each([
    ['steps not an array', { steps: 'npm ci' }],
    ['an empty step', { steps: [''] }],
    ['a cwd leaving the workspace', { steps: [{ run: 'x', cwd: '../up' }] }],
    ['an absolute cwd', { steps: [{ run: 'x', cwd: '/etc' }] }],
    ['a bad env name', { steps: ['x'], env: { 'A-B': '1' } }],
    ['a zero time-out', { steps: ['x'], timeoutSeconds: 0 }],
    ['a misspelt limit', { steps: ['x'], limits: { memoryMb: 100 } }],
    ['a fractional limit', { steps: [{ run: 'x', limits: { cpuSeconds: 1.5 } }] }],
    ['a zero limit', { steps: ['x'], limits: { openFiles: 0 } }],
    ['a bad secret name', { steps: ['x'], secrets: ['A-B'] }],
  ])('refuses %s', (_name, value) => {
    expect(jobDefinitionSchema.safeParse(value).success).toBe(false);
  });

  it('publishes a JSON Schema', () => {
    const schema = jobJsonSchema();
    expect(schema.type).toBe('object');
    expect(Object.keys(schema.properties as object)).toEqual([
      'steps',
      'env',
      'timeoutSeconds',
      'artifacts',
      'limits',
      'secrets',
    ]);
  });
});
