// An upstream that flaps between answering, failing with 5xx, resetting the
// connection and hanging past the timeout, under concurrent load: every
// failed request is refunded, so the final count is exactly what was served.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminJson, expectUp, metricsText } from '../helpers/checked-setup.js';
import { editConfig } from '../helpers/edit-config.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

describe('upstream down and flapping', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      config: editConfig(
        TEST_CONFIG,
        ['store: { timeoutMs: 2000 }', 'store: { timeoutMs: 2000 }\nupstream: { timeoutMs: 300 }'],
        ['tiny: { ai_tasks: 10,', 'tiny: { ai_tasks: 1000000,'],
      ),
      redis: redisUrl(),
      keyPrefix: uniquePrefix('flap'),
    });
    await expectUp(h);
  });
  afterAll(async () => h.close());

  it('refunds exactly the requests that were not served', async () => {
    let n = 0;
    h.upstream.respond = (_req, res) => {
      const mode = n++ % 5;
      if (mode === 0 || mode === 1) res.writeHead(200).end('ok');
      else if (mode === 2) res.writeHead(503).end('busy');
      else if (mode === 3) res.socket?.destroy();
      // mode 4: never answers; the 300 ms upstream timeout fires
    };
    const a = `flap-${randomUUID()}`;
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 25; i++) {
          const r = await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '3' } });
          await r.arrayBuffer();
          statuses.push(r.status);
        }
      }),
    );
    const served = statuses.filter((s) => s === 200).length;
    expect(served).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 502).length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 504).length).toBeGreaterThan(0);
    expect(statuses.every((s) => [200, 502, 503, 504].includes(s))).toBe(true);
    const usage = await adminJson(h, `/v1/accounts/${a}/usage`);
    expect(usage.pools.ai_tasks.used).toBe(served * 3);
    const metrics = await metricsText(h);
    const refunded = Number(/^creditgate_credits_refunded_total\{credit_type="ai_tasks",reason="upstream_error"\} (\d+)$/m.exec(metrics)?.[1]);
    expect(refunded).toBe((statuses.length - served) * 3);
  });
});
