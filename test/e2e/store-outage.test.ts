// Redis goes away: requests on charged routes get 503 store-unavailable (never
// a 402, never a silent pass), one error log line each, and the store errors
// are counted; /readyz turns 503; Redis coming back needs no restart.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger, type CapturedLogger } from '../helpers/capture-logger.js';
import { editConfig } from '../helpers/edit-config.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';

describe('store outage', () => {
  let redis: TestRedis;
  let h: Harness;
  let log: CapturedLogger;
  beforeAll(async () => {
    redis = await startRedis();
    log = captureLogger();
    h = await startHarness({
      config: editConfig(TEST_CONFIG, ['store: { timeoutMs: 2000 }', 'store: { timeoutMs: 200 }']),
      redis: redis.url,
      logger: log.logger,
    });
  });
  afterAll(async () => {
    await h.close();
    await redis.stop();
  });

  const spend = (a: string, requestId: string) =>
    fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '1', 'x-request-id': requestId } });

  it('answers 503 problem+json with Retry-After while Redis is down, and recovers by itself', async () => {
    const a = `o-${randomUUID()}`;
    expect((await spend(a, 'before')).status).toBe(200);
    const port = redis.port;
    await redis.stop();

    const r = await spend(a, 'during-outage');
    expect(r.status).toBe(503);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect(r.headers.get('retry-after')).toBe('1');
    expect((await r.json()).type).toBe('https://creditgate.dev/problems/store-unavailable');
    expect(h.upstream.requests.filter((x) => x.headers['x-request-id'] === 'during-outage')).toHaveLength(0);
    const line = log.lines.find((l) => l.requestId === 'during-outage');
    expect(line).toMatchObject({ route: 'by-header', outcome: 'store_error', level: 50 });
    expect((await fetch(`${h.admin}/readyz`)).status).toBe(503);
    const text = await (await fetch(`${h.admin}/metrics`)).text();
    const storeErrors = (op: string) => Number(new RegExp(`^creditgate_store_errors_total\\{operation="${op}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
    expect(storeErrors('get_account') + storeErrors('charge')).toBeGreaterThanOrEqual(1);
    expect(Number(/^creditgate_decisions_total\{route="by-header",credit_type="none",outcome="store_error"\} (\d+)$/m.exec(text)?.[1])).toBe(1);

    // Redis back on the same port: the client reconnects on its own.
    redis = await startRedis([], { port });
    for (let i = 0; i < 100; i++) {
      if ((await fetch(`${h.admin}/readyz`)).status === 200) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect((await fetch(`${h.admin}/readyz`)).status).toBe(200);
    // The breaker probes every second: within a few, requests are charged again.
    let status = 0;
    for (let i = 0; i < 60 && status !== 200; i++) {
      status = (await spend(`o-${randomUUID()}`, `after-${i}`)).status;
      if (status !== 200) await new Promise((res) => setTimeout(res, 100));
    }
    expect(status).toBe(200);
  });
});
