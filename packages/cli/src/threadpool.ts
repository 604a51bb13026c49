// Staging and syncing keep many file copies in flight; libuv's default pool of 4
// threads would serialise them. Must run before the first fs call, hence first import.
const ours = process.env.UV_THREADPOOL_SIZE === undefined;
process.env.UV_THREADPOOL_SIZE ??= '16';

/** The worker's own tuning, kept from steps (a user's own setting is passed on). */
export function withoutWorkerTuning(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (!ours || env.UV_THREADPOOL_SIZE !== '16') return env;
  const { UV_THREADPOOL_SIZE: _, ...rest } = env;
  return rest;
}
