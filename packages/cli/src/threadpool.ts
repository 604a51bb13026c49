// Staging and syncing keep many file copies in flight; libuv's default pool of 4
// threads would serialise them. Must run before the first fs call, hence first import.
process.env.UV_THREADPOOL_SIZE ??= '16';
