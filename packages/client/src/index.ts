export type {
  CancelOutcome,
  Channel,
  JobWatch,
  SubmitRequest,
  WorkerStatus,
  WorkersOptions,
} from './channel.js';
export { ClientError, isClientError, WaitTimeoutError } from './errors.js';
export { generateJobId } from './job-id.js';
export { eventOfManifest } from './manifest-events.js';
export { type PreparedJob, type PrepareOptions, prepareJob } from './prepare.js';
export { type JobStatusInfo, readStatus } from './status.js';
export { type FollowLogsOptions, followLogs, type LogChunk } from './step-logs.js';
export {
  cancelJob,
  type JobHandle,
  listWorkers,
  type SubmitJobOptions,
  submitJob,
} from './submit.js';
export { openChannel } from './via.js';
