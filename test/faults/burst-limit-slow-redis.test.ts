// A route with a rateLimit asks Redis for the request rate before the charge.
// A Redis that is slow (DEBUG SLEEP) must not hold such a request past
// store.timeoutMs there either: the rate limit falls back to its in-memory
// insurance limiter, as it does when Redis is gone. Its own redis-server.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editConfig } from '../helpers/edit-config.js';
import { startOwnRedisHarness, type OwnRedisHarness } from '../helpers/own-redis-harness.js';
import { TEST_CONFIG } from '../helpers/sidecar-harness.js';

const CONFIG = editConfig(
  TEST_CONFIG,
  ['tiny: { ai_tasks: 10,', 'tiny: { ai_tasks: 1000,'],
  ['store: { timeoutMs: 2000 }', 'store: { timeoutMs: 100 }'],
  ['ai_tasks: { name: AI Task Credits,', 'ai_tasks: { name: AI Task Credits, onStoreError: allow,'],
  ['  - name: by-header\n    method: POST', '  - name: by-header\n    rateLimit: { points: 3, duration: 1s }\n    method: POST'],
);

describe('a rate-limited route while Redis is slow', () => {
  let own: OwnRedisHarness;
  beforeAll(async () => {
    own = await startOwnRedisHarness(CONFIG, 'burst-slow');
  });
  afterAll(async () => own.close());

  it('is answered within the store timeout (plus a margin), not when Redis wakes up', async () => {
    const a = `slow-${randomUUID()}`;
    // Warm: the limiter and the charge have both talked to Redis once.
    const warm = await fetch(`${own.h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '1' } });
    expect(warm.status).toBe(200);
    const sleeping = own.admin.call('DEBUG', 'SLEEP', '2');
    await new Promise((r) => setTimeout(r, 20));
    const started = performance.now();
    const r = await fetch(`${own.h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '1' } });
    const elapsed = performance.now() - started;
    await r.text();
    await sleeping;
    // 100 ms for the rate limit, 100 ms for the charge (onStoreError: allow), and slack.
    expect(elapsed).toBeLessThan(1000);
    expect(r.status).toBe(200);
  });
});
