export { formatBytes } from './byte-size.js';
export {
  type CgroupParent,
  CgroupParentError,
  cgroup2Mount,
  reapStaleCgroups,
} from './cgroup.js';
export {
  Claim,
  type ClaimAttempt,
  type ClaimRecord,
} from './claim.js';
export {
  DEAD_LETTER_FILE_DEFAULTS,
  type DeadLetter,
  DeadLetterFile,
  type DeadLetterFileOptions,
  type DeadLetterLine,
} from './dead-letter-file.js';
export {
  defineHandler,
  type HandlerDefinition,
  isHandler,
  type Validation,
  validateHandlerInput,
} from './define-handler.js';
export {
  type FreeSpace,
  type FreeSpaceLimit,
  type FreeSpaceReader,
  readFreeSpace,
} from './disk-guard.js';
export type { JwErrorOptions } from './errors.js';
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
export type {
  HeartbeatInput,
  WorkerHeartbeat,
  WorkerState,
} from './heartbeat.js';
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
export {
  type ResolvedJob,
  resolveJob,
} from './job-source.js';
// What a worker needs before its first job: light.ts, which the binaries bundle alone.
export * from './light.js';
export {
  describeLimit,
  effectiveLimits,
  LIMIT_NAMES,
  type LimitName,
  type LimitPolicy,
  type Limits,
  limitsSchema,
  NO_LIMITS,
} from './limits.js';
export type { Logger } from './logger.js';
export {
  type ArtifactRecord,
  FINAL_STATUSES,
  type FinalStatus,
  type JobStatus,
  MANIFEST_FILE,
  type Manifest,
  manifestPath,
  type ResultMessage,
  type StepRecord,
  type StepStatus,
  type WorkerInfo,
  writeFileAtomic,
  writeManifest,
} from './manifest.js';
export { maskedLogger, maskText, SECRET_MARK, SecretMasker } from './mask.js';
export type {
  MemoryTransport,
  Settlement,
} from './memory-transport.js';
export {
  type AttemptEnd,
  type AttemptObserver,
  type AttemptStart,
  type CombinedAttemptObserver,
  type CombinedObserver,
  combineObservers,
  type PhaseEnd,
  type PhaseObserver,
  type StepEnd,
  type StepObserver,
  type StepStart,
  type TraceContext,
  type WorkerObserver,
} from './observer.js';
export { reapStep, STEP_TOKEN_VAR } from './process-reaper.js';
export {
  type JobProgress,
  ProgressFile,
  type ProgressReport,
  ProgressThrottle,
  parseProgressLine,
  progressFileOf,
  progressReport,
} from './progress.js';
export {
  BadRequestError,
  DEFAULT_MAX_REQUEST_BYTES,
  isValidTraceparent,
  JOB_ID_PATTERN,
  type JobRequest,
  type JobRequestInput,
  parseRequest,
  type RequestBody,
  requestSchema,
  resolveJobDir,
} from './request.js';
export {
  chownWorkspace,
  type RunAs,
} from './run-as.js';
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
export { buildStepEnv, isSecretName, stepSecrets } from './step-env.js';
export { removeStepLogs, StepLog, stepLogName } from './step-log.js';
export {
  type ArtifactFilter,
  artifactMatcher,
  type SyncedArtifact,
  syncArtifacts,
} from './sync.js';
export type { Delivery, ReleaseReason, Transport, TransportContext } from './transport.js';
export {
  type StopCause,
  WORKER_DEFAULTS,
  Worker,
  type WorkerEvents,
  type WorkerOptions,
  type WorkerSummary,
} from './worker.js';
export { createWorkspace, removeDeadWorkspaces, removeWorkspace } from './workspaces.js';
