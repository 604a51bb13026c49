/**
 * What a worker binary needs before its first job: the worker loop, claims, manifests,
 * errors, settings checks. It leaves out the step runner (`runJob`, `runStep`: execa),
 * which the loop imports with the first job. The binaries resolve `@jw/core` here when
 * bundled (issue 14: a waiting worker's memory); the library entry stays `index.ts`.
 */
export { parseByteSize } from './byte-size.js';
export { openCgroupParent } from './cgroup.js';
export {
  claimJob,
  findStaleJobs,
  leaseRemaining,
  readClaim,
  removeStaleClaim,
} from './claim.js';
export { describeContainment } from './containment.js';
export { DiskGuard, parseFreeSpaceLimit } from './disk-guard.js';
export { ErrorCode, isJwError, JwError, toJwError } from './errors.js';
export { workerHeartbeat } from './heartbeat.js';
export { JOB_FILE } from './job-source.js';
export { checkLimitPolicy } from './limits.js';
export { silentLogger } from './logger.js';
export { isFinalStatus, RESULTS_DIR, readManifest, resultMessageOf } from './manifest.js';
export { createMemoryTransport } from './memory-transport.js';
export { isValidJobId } from './request.js';
export { resolveRunAs } from './run-as.js';
export { createWorker } from './worker.js';
