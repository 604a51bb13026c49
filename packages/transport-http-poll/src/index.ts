export { AgentCallError, AgentClient, type AgentClientOptions } from './agent-client.js';
export {
  createHttpPollTransport,
  type HttpPollTransport,
  TOKEN_ENV,
} from './http-poll-transport.js';
export {
  type BackendJob,
  expandTemplate,
  type ParsedJob,
  parseNextJob,
  requestOf,
  shellQuote,
} from './job-payload.js';
export {
  type HttpPollTransportOptions,
  httpPollOptionsSchema,
  type ResolvedHttpPollOptions,
} from './options.js';
export {
  type AgentStatus,
  type CancelWord,
  type FinalAgentStatus,
  type StatusReport,
  statusWordOf,
} from './status-words.js';
