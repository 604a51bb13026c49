// The broker client alone, loaded and connected: idle, the floor for a worker's idle RSS;
// with `once`, closed again at once, the floor for a one-shot worker's cold start.
// argv: nats|mqtt url [once]
const [kind, url, once] = process.argv.slice(2);
let close;
if (kind === 'nats') {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: url });
  await jetstreamManager(nc);
  close = () => nc.close();
} else {
  const mqtt = await import('mqtt');
  const client = await mqtt.connectAsync(url, { protocolVersion: 5 });
  await client.subscribeAsync('bench/idle', { qos: 1 });
  close = () => client.endAsync();
}
if (once) await close();
else {
  process.stderr.write('connected\n');
  setInterval(() => {}, 1 << 30);
}
