import { EventEmitter } from 'node:events';
import type { MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { installBackoff } from './connection.js';

describe('installBackoff', () => {
  it('doubles the reconnect delay after each failed attempt, up to the max, and resets on connect', () => {
    const client = Object.assign(new EventEmitter(), { options: { reconnectPeriod: 1000 } });
    installBackoff(client as unknown as MqttClient, 100, 1000);
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      client.emit('close');
      delays.push(client.options.reconnectPeriod);
    }
    // Jitter is ±20 %.
    const nominal = [100, 200, 400, 800, 1000, 1000];
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(nominal[i]! * 0.8);
      expect(d).toBeLessThanOrEqual(nominal[i]! * 1.2);
    });
    client.emit('connect');
    client.emit('close');
    expect(client.options.reconnectPeriod).toBeLessThanOrEqual(120);
  });
});
