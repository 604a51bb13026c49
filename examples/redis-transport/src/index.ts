export { type Keys, keysOf } from './keys.js';
export { REDIS_DEFAULTS, type RedisTransportOptions } from './options.js';
export { createRedisTransport, REDIS_SECRET_ENV } from './transport.js';
