import { describe, expect, it } from 'vitest';
import { runTransport } from '../src/run.mjs';
import { TRANSPORTS } from '../src/transports.mjs';

// The small version of `pnpm chaos`: a few jobs per transport, one SIGKILL of a
// worker whose step is running, one broker restart. It asserts the targets of
// issue 12, so that CI catches a regression.
const SMALL = {
  jobs: 6,
  // Two, not four: on a busy 2-core machine starting workers is most of the time.
  workers: 2,
  brokerRestarts: 1,
  maxKills: 1,
  killTarget: 'busy' as const,
  // The first start is seen, then the kill comes before any step can have ended.
  killEveryMs: [300, 800] as [number, number],
  stepSeconds: [1.5, 2.5] as [number, number],
  brokerDownMs: [300, 1000] as [number, number],
  // Shorter than the defaults (30 s each) so that a kill's recovery fits a CI run.
  lease: 10,
  staleAfter: 6,
  workerArgs: { nats: ['--ack-wait', '10'], mqtt: ['--recover-interval', '5'] },
  faultMs: 30_000,
  drainMs: 90_000,
  settleMs: 1_000,
};

describe('chaos, small', () => {
  for (const transport of TRANSPORTS) {
    it(`${transport}: a kill and a broker restart lose nothing and leave nothing`, async () => {
      const report = await runTransport(transport, SMALL);
      const context = JSON.stringify({ ...report.details, runDir: report.runDir }, null, 2);
      expect(report.error, context).toBeUndefined();
      expect(report.kills, context).toBe(1);
      expect(report.brokerRestarts, context).toBe(transport === 'file' ? 0 : 1);
      expect(
        {
          lost: report.lost,
          overlapping: report.overlapping,
          missingResults: report.missingResults,
          leftovers: report.leftovers.total,
          stepsAliveAfterKill: report.aliveAfterKill.killsWithSurvivors,
          stepsRanOnAfterKill: report.aliveAfterKill.stepsRanOn,
          processesLeftAtEnd: report.processesLeftAtEnd,
        },
        context,
      ).toEqual({
        lost: 0,
        overlapping: 0,
        missingResults: 0,
        leftovers: 0,
        stepsAliveAfterKill: 0,
        stepsRanOnAfterKill: 0,
        processesLeftAtEnd: 0,
      });
    }, 240_000);
  }
});
