import { describe, expect, it } from 'vitest';
import { expandTemplate, parseNextJob, requestOf, shellQuote } from './job-payload.js';

describe('parseNextJob', () => {
  it('maps a full job', () => {
    const parsed = parseNextJob(
      JSON.stringify({
        job_id: 'j1',
        job_name: 'sim',
        config_path: 'configs/a.yaml',
        command: 'run it',
        env: { A: 1, B: true },
        image: 'ignored',
      }),
    );
    expect(parsed).toEqual({
      kind: 'job',
      job: {
        jobId: 'j1',
        jobName: 'sim',
        configPath: 'configs/a.yaml',
        command: 'run it',
        env: { A: '1', B: 'true' },
        force: false,
      },
    });
  });

  it('takes integer ids and argv commands, defaults the name to the id', () => {
    const parsed = parseNextJob('{"job_id": 42, "config_path": "c", "command": ["echo", "a b"]}');
    expect(parsed).toMatchObject({
      kind: 'job',
      job: { jobId: '42', jobName: '42', command: "echo 'a b'" },
    });
  });

  it.each([
    ['not json', 'garbage'],
    ['[]', 'garbage'],
    ['null', 'garbage'],
    ['{"config_path": "c"}', 'garbage'],
    ['{"job_id": ""}', 'garbage'],
    ['{"job_id": {"a": 1}}', 'garbage'],
  ])('%s is not a job', (text, kind) => {
    expect(parseNextJob(text).kind).toBe(kind);
  });

  it('reports a bad id or a bad field as invalid, with the id', () => {
    expect(parseNextJob('{"job_id": "../etc"}')).toMatchObject({
      kind: 'invalid',
      jobId: '../etc',
    });
    const bad = parseNextJob('{"job_id": "j2", "env": "A=1"}');
    expect(bad).toMatchObject({ kind: 'invalid', jobId: 'j2' });
    expect(bad.kind === 'invalid' && bad.reason).toMatch(/env/);
  });
});

describe('requestOf', () => {
  const job = {
    jobId: 'j1',
    jobName: "it's mine",
    configPath: 'cfg/a.json',
    command: undefined,
    env: { X: '1' },
    force: false,
  };

  it('prefers the backend command, then the template, then job.json', () => {
    expect(
      requestOf({ ...job, command: 'make' }, { commandTemplate: 'x', sharedDir: '/s' }).steps,
    ).toEqual(['make']);
    expect(requestOf(job, { commandTemplate: 'run {job_id}', sharedDir: '/s' }).steps).toEqual([
      'run j1',
    ]);
    const bare = requestOf(job, { sharedDir: '/s' });
    expect(bare.steps).toBeUndefined();
    expect(bare.env).toEqual({
      JW_JOB_NAME: "it's mine",
      JW_SHARED_DIR: '/s',
      JW_CONFIG_PATH: 'cfg/a.json',
      X: '1',
    });
  });

  it('shell-quotes placeholder values and leaves other braces alone', () => {
    expect(
      expandTemplate(
        "docker run -v {shared_dir}:/data img --config /data/{config_path} --name {job_name} --format '{{.ID}}'",
        job,
        '/mnt/shared dir',
      ),
    ).toBe(
      "docker run -v '/mnt/shared dir':/data img --config /data/cfg/a.json --name 'it'\"'\"'s mine' --format '{{.ID}}'",
    );
  });

  it('refuses a template that needs a missing config path', () => {
    expect(() =>
      requestOf(
        { ...job, configPath: undefined },
        { commandTemplate: 'run {config_path}', sharedDir: '/s' },
      ),
    ).toThrow(/config_path/);
  });

  it('quotes only what needs it', () => {
    expect(shellQuote('a/b-c_d.e:1')).toBe('a/b-c_d.e:1');
    expect(shellQuote('$(rm -rf /)')).toBe("'$(rm -rf /)'");
  });
});
