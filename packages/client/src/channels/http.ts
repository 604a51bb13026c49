import { isFinalStatus, readManifest, resultMessageOf } from '@jw/core';
import type { JobRecord, SubmitInput, WorkerRecord } from '@jw/transport-http-poll/backend';
import type { Channel, JobWatch } from '../channel.js';
import { ClientError, connectionHint, redact } from '../errors.js';
import { pollWatch } from './poll-watch.js';
import { workerStatusOf } from './worker-status.js';

/** How often the backend is asked for a job's status. */
const STATUS_POLL_MS = 500;

/** The backend's final words as the manifest's statuses (SPEC 8 → SPEC 5). */
const STATUS_OF_WORD = {
  finished: 'success',
  failed: 'failed',
  stopped: 'cancelled',
  canceled: 'cancelled',
} as const;

/**
 * The reference backend (SPEC 8, `jw-reference-backend`): the client submits on its job
 * API (`POST /api/jobs`) and polls `GET /api/jobs/{id}`; agents take jobs from it. A
 * password in the URL (`http://jw:TOKEN@host`) is sent as the bearer token.
 */
export function httpChannel(url: URL): Channel {
  const token = url.password ? decodeURIComponent(url.password) : undefined;
  const base = `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
  const label = redact(url.toString());

  const call = async <T>(method: string, route: string, body?: unknown): Promise<T> => {
    let response: Response;
    try {
      response = await fetch(`${base}${route}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause ?? error;
      throw new ClientError(
        `cannot reach the backend at ${label}: ${(cause as Error).message}`,
        connectionHint(cause, 'the backend', label) ?? 'wrong --via?',
        { cause: error },
      );
    }
    const text = await response.text();
    if (!response.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch {}
      throw new ClientError(
        `backend answered ${response.status} to ${method} ${route}: ${message}`,
        response.status === 401
          ? 'put the token in --via: http://jw:TOKEN@host'
          : response.status === 404
            ? 'is --via the reference backend (jw-reference-backend)?'
            : undefined,
      );
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  };

  return {
    kind: 'http',
    label,
    async watch(id, jobDir): Promise<JobWatch> {
      return pollWatch(id, jobDir, STATUS_POLL_MS, async () => {
        const record = await call<JobRecord>('GET', `/api/jobs/${encodeURIComponent(id)}`).catch(
          (error: ClientError) => {
            // Not submitted yet (we watch before sending), or the backend blinked.
            if (/ 404 /.test(error.message)) return undefined;
            throw error;
          },
        );
        if (!record?.ended) return undefined;
        const manifest = await readManifest(jobDir);
        if (manifest && isFinalStatus(manifest.status))
          return resultMessageOf(manifest, record.worker_id ?? manifest.worker.id);
        const word = record.status as keyof typeof STATUS_OF_WORD;
        return {
          id,
          status: STATUS_OF_WORD[word] ?? 'error',
          exitCode: record.exit_code ?? (word === 'finished' ? 0 : 1),
          manifestFile: null,
          workerId: record.worker_id ?? '',
          ...(record.error ? { error: record.error } : {}),
        };
      });
    },
    async send(request) {
      if (request.timeoutSeconds !== undefined) {
        throw new ClientError(
          'the backend protocol carries no job time-out',
          'put "timeoutSeconds" in the job.json instead',
        );
      }
      const body: SubmitInput = {
        job_id: request.id,
        job_name: request.id,
        ...(request.env ? { env: request.env } : {}),
      };
      await call('POST', '/api/jobs', body);
    },
    async cancel(id) {
      const record = await call<JobRecord>('POST', `/api/jobs/${encodeURIComponent(id)}/cancel`);
      return {
        sent: true,
        ...(record.ended ? { confirmed: true } : {}),
        detail: record.ended
          ? 'the backend canceled it (it was not running yet)'
          : 'the agent running it sees the cancel on its next status poll',
      };
    },
    async workers() {
      const records = await call<WorkerRecord[]>('GET', '/api/workers');
      // The backend lists whom it heard from: `at` is when it last did.
      return records.map((w) => ({
        ...workerStatusOf(w.info, { workerId: w.worker_id, transport: 'http', status: 'online' }),
        at: w.last_seen,
      }));
    },
    async close() {},
  };
}
