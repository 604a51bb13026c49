export type { HeartbeatMessage } from './heartbeat.js';
export { NATS_DEFAULTS, type NatsTransportOptions } from './options.js';
export { type Subjects, subjectMatches, subjectsOf } from './subjects.js';
export { createNatsTransport, NATS_SECRET_ENV } from './transport.js';
