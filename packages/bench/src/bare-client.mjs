// The broker client alone, loaded and connected, idle: the floor for a worker's idle RSS.
// argv: nats|mqtt url
const [kind, url] = process.argv.slice(2);
if (kind === 'nats') {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: url });
  await jetstreamManager(nc);
} else {
  const mqtt = await import('mqtt');
  const client = await mqtt.connectAsync(url, { protocolVersion: 5 });
  await client.subscribeAsync('bench/idle', { qos: 1 });
}
process.stderr.write('connected\n');
setInterval(() => {}, 1 << 30);
