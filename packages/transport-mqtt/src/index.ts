export type { DeadLetterRecord } from './dead-letter.js';
export { createMqttTransport, MqttTransport } from './mqtt-transport.js';
export {
  DEFAULT_TOPICS,
  type MqttTopics,
  type MqttTransportOptions,
  parseProtocolVersion,
  resolveOptions as resolveMqttOptions,
} from './options.js';
export { topicMatches } from './topics.js';
