import path from 'node:path';
import { type Delivery, ErrorCode, JwError } from '@jw/core';
import type { AgentState } from './agent-state.js';
import { CombinedLog } from './combined-log.js';
import { JobMonitor } from './job-monitor.js';
import type { BackendJob, requestOf } from './job-payload.js';
import { type FinalAgentStatus, type StatusReport, statusWordOf } from './status-words.js';

/**
 * The delivery of one backend job: while it runs, `running` is re-posted and the
 * backend's status watched for a stop; settling it posts the one final status
 * through the outbox.
 */
export function deliveryOf(
  a: AgentState,
  job: BackendJob,
  body: ReturnType<typeof requestOf>,
): Delivery {
  const { jobId } = job;
  const { workerId } = a.context;
  const logFile = path.join(a.context.jobsDir, jobId, 'logs', `${jobId}.log`);
  const combined = new CombinedLog(logFile, a.logger, a.options.logCopyIntervalMs);
  let cancelled = false;
  let settled = false;
  const cancel = () => {
    if (cancelled || !monitor.cancelWord) return;
    cancelled = a.context.cancelJob(jobId, `the backend asked: ${monitor.cancelWord}`);
  };
  const monitor = new JobMonitor({
    jobId,
    workerId,
    client: a.client,
    logger: a.logger,
    intervalMs: a.options.statusPollIntervalMs,
    onStopRequest: cancel,
  });
  const settle = async (
    report: Omit<StatusReport, 'job_id' | 'worker_id'> | undefined,
    dropClaim?: () => Promise<void>,
  ) => {
    if (settled) return;
    settled = true;
    // The monitor's calls end first, so no `running` reaches the backend after the final word.
    await monitor.stop();
    await combined.close();
    a.running.delete(delivery);
    // The in-flight note is kept until the final status is safe (stored or taken) and the
    // claim is gone, so a restart finds a job that ended meanwhile (it sends the status
    // and drops the dead claim), and no longer, so it seldom sends it twice.
    const noted = async () => {
      await dropClaim?.();
      await a.inFlight.remove(jobId);
    };
    let safe = true;
    if (report) {
      a.last = { jobId, status: report.status as FinalAgentStatus };
      safe = await a.outbox.send({ job_id: jobId, worker_id: workerId, ...report }, noted);
    } else {
      await noted();
    }
    void a.heartbeat.beat();
    if (!safe) {
      // The claim stays (the result is not taken): a restarted agent sends it from result.json.
      throw new JwError(
        ErrorCode.TRANSPORT_FAILED,
        `final status of ${jobId} neither reached the backend nor could be stored`,
      );
    }
  };
  const delivery: Delivery = {
    body,
    label: `job ${jobId}`,
    onEvent: (event) => {
      if (event.state === 'claimed' || event.state === 'staging' || event.state === 'running') {
        monitor.reportRunning();
      }
      if (event.state === 'running' && event.step) void combined.follow(event.step.logFile);
      cancel();
    },
    complete: (result, _manifest, published) =>
      settle(
        {
          status: statusWordOf(result.status, monitor.cancelWord),
          ...(result.exitCode === null ? {} : { exit_code: result.exitCode }),
          ...(result.error === undefined ? {} : { error: result.error }),
        },
        published,
      ),
    reject: (error, result) =>
      settle({
        status: 'failed',
        ...(result?.exitCode == null ? {} : { exit_code: result.exitCode }),
        error: error.message,
      }),
    release: async (reason) => {
      if (reason === 'busy') {
        // Another agent holds a fresh claim on this job and reports it; we stay silent.
        a.logger.warn({ jobId }, 'job is claimed by another worker; leaving it to that worker');
        return settle(undefined);
      }
      return settle({
        status: 'failed',
        error:
          reason === 'shutdown'
            ? 'the agent shut down before the job finished'
            : 'the job could not run on this agent (shared drive unavailable)',
      });
    },
  };
  a.running.set(delivery, jobId);
  monitor.start();
  return delivery;
}
