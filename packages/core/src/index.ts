export {
  Claim,
  type ClaimAttempt,
  type ClaimRecord,
  claimJob,
  findStaleJobs,
  leaseRemaining,
  readClaim,
  removeStaleClaim,
} from './claim.js';
export {
  defineHandler,
  type HandlerDefinition,
  isHandler,
  type Validation,
  validateHandlerInput,
} from './define-handler.js';
export { ErrorCode, isJwError, JwError, type JwErrorOptions, toJwError } from './errors.js';
export { isFinalState, type JobEvent, type JobState } from './events.js';
export {
  builtinHandlers,
  echoHandler,
  httpRequestHandler,
  sleepHandler,
} from './handlers/builtins.js';
export {
  checkUsesSteps,
  findHandler,
  handlerMap,
  type RegisteredHandler,
} from './handlers/registry.js';
export type {
  AnyHandler,
  Handler,
  HandlerContext,
  HandlerLog,
  HandlerResult,
  HandlerSchema,
  Handlers,
  InferInput,
  SafeParseSchema,
  StandardSchemaIssue,
  StandardSchemaResult,
  StandardSchemaV1,
  StepProgress,
} from './handlers/types.js';
export { type ProcessIdentity, processGone } from './host.js';
export {
  type JobDefinition,
  type JobDefinitionInput,
  jobDefinitionSchema,
  jobJsonSchema,
  normalizeSteps,
  type Step,
  type StepInput,
} from './job-definition.js';
export { JOB_FILE, type ResolvedJob, resolveJob } from './job-source.js';
export { type Logger, silentLogger } from './logger.js';
export {
  type ArtifactRecord,
  FINAL_STATUSES,
  type FinalStatus,
  isFinalStatus,
  type JobStatus,
  MANIFEST_FILE,
  type Manifest,
  manifestPath,
  RESULTS_DIR,
  type ResultMessage,
  readManifest,
  resultMessageOf,
  type StepRecord,
  type StepStatus,
  type WorkerInfo,
  writeFileAtomic,
  writeManifest,
} from './manifest.js';
export {
  createMemoryTransport,
  type MemoryTransport,
  type Settlement,
} from './memory-transport.js';
export {
  BadRequestError,
  DEFAULT_MAX_REQUEST_BYTES,
  isValidJobId,
  JOB_ID_PATTERN,
  type JobRequest,
  type JobRequestInput,
  parseRequest,
  type RequestBody,
  requestSchema,
  resolveJobDir,
} from './request.js';
export { type JobOutcome, type RunJobOptions, runJob } from './run-job.js';
export {
  type RunStepOptions,
  runStep,
  type StepHandler,
  type StepHandlerContext,
  type StepOutcome,
  type StopReason,
} from './run-steps.js';
export {
  type Change,
  diffSnapshots,
  type FileState,
  findChanges,
  type Snapshot,
  sha256File,
  takeSnapshot,
} from './snapshot.js';
export { type StageSummary, stageJob } from './stage.js';
export { buildStepEnv, isSecretName } from './step-env.js';
export { removeStepLogs, StepLog, stepLogName } from './step-log.js';
export {
  type ArtifactFilter,
  artifactMatcher,
  type SyncedArtifact,
  syncArtifacts,
} from './sync.js';
export type { Delivery, ReleaseReason, Transport, TransportContext } from './transport.js';
export {
  createWorker,
  type StopCause,
  WORKER_DEFAULTS,
  Worker,
  type WorkerEvents,
  type WorkerOptions,
  type WorkerSummary,
} from './worker.js';
export { createWorkspace, removeDeadWorkspaces, removeWorkspace } from './workspaces.js';
