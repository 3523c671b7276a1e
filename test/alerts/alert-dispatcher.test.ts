// The delivery queue against a real (slow or failing) HTTP receiver: bounded,
// oldest dropped first, retried up to maxAttempts, never blocking publish().

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertDispatcher, type DeliveryResult } from '../../src/alerts/alert-dispatcher.js';
import type { AlertsConfig } from '../../src/config/compiled-config.js';
import type { ResolvedAccount } from '../../src/engine/credit-engine.js';
import { silentLogger } from '../../src/logger.js';
import { sampleEvent } from '../helpers/sample-event.js';

const event = (id: string) => sampleEvent(id);
const account = { id: 'acme', record: null } as unknown as ResolvedAccount;

let servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers) s.close();
  servers = [];
});

async function receiver(handle: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<string> {
  const server = http.createServer(handle);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

function dispatcher(config: AlertsConfig, results: DeliveryResult[], concurrency = 1) {
  return new AlertDispatcher({ config: () => config, logger: silentLogger(), retryBaseMs: 5, concurrency, onResult: (_c, r) => results.push(r) });
}

describe('alert dispatcher', () => {
  it('keeps at most queueSize deliveries waiting and drops the oldest beyond that', async () => {
    const held: http.ServerResponse[] = [];
    const received: string[] = [];
    const url = await receiver((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body).id);
        held.push(res);
      });
    });
    const results: DeliveryResult[] = [];
    const d = dispatcher({ thresholds: [0.8], keepEvents: 10, queueSize: 3, webhook: { url, timeoutMs: 5000, maxAttempts: 1 } }, results);
    const started = Date.now();
    d.publish(
      account,
      Array.from({ length: 10 }, (_, i) => event(`e${i}`)),
    );
    // publish() only queues: it returned before any receiver answered.
    expect(held).toHaveLength(0);
    expect(results.filter((r) => r === 'dropped')).toHaveLength(6);
    await new Promise((r) => setTimeout(r, 50));
    for (;;) {
      const res = held.shift();
      if (res) res.writeHead(204).end();
      if (d.pending === 0) break;
      await new Promise((r) => setTimeout(r, 10));
      if (Date.now() - started > 5000) throw new Error('deliveries never finished');
    }
    // e0 was in flight; of e1…e9 only the newest three were kept.
    expect(received).toEqual(['e0', 'e7', 'e8', 'e9']);
    expect(results.filter((r) => r === 'sent')).toHaveLength(4);
    d.close();
  });

  it('gives up after maxAttempts and reports the failure', async () => {
    let attempts = 0;
    const url = await receiver((_req, res) => {
      attempts += 1;
      res.writeHead(500).end();
    });
    const results: DeliveryResult[] = [];
    const d = dispatcher({ thresholds: [0.8], keepEvents: 10, queueSize: 10, webhook: { url, timeoutMs: 5000, maxAttempts: 3 } }, results);
    d.publish(account, [event('e1')]);
    await d.flush(5000);
    expect(attempts).toBe(3);
    expect(results).toEqual(['retried', 'retried', 'failed']);
    d.close();
  });

  it('a receiver slower than the timeout counts as a failed attempt', async () => {
    const url = await receiver(() => {
      // never answers
    });
    const results: DeliveryResult[] = [];
    const d = dispatcher({ thresholds: [0.8], keepEvents: 10, queueSize: 10, webhook: { url, timeoutMs: 100, maxAttempts: 1 } }, results);
    d.publish(account, [event('e1')]);
    await d.flush(5000);
    expect(results).toEqual(['failed']);
    d.close();
  });
});
