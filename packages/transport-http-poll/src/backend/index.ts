export {
  type BackendJobStatus,
  JobQueue,
  type JobQueueOptions,
  type JobRecord,
  QueueError,
  type StatusInput,
  type SubmitInput,
  submitSchema,
  type WorkerRecord,
} from './job-queue.js';
export {
  type BackendHandler,
  type BackendHandlerOptions,
  type BackendRequest,
  createBackendHandler,
  type ReferenceBackend,
  type StartBackendOptions,
  startReferenceBackend,
} from './server.js';
