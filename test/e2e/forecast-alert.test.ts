// The forecast alert end to end: two replicas on one real Redis, a real
// webhook receiver; concurrent charges put a pool on pace to run out early
// and exactly one `forecast` event is sent for the cycle.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editConfig } from '../helpers/edit-config.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const DAY = 86_400_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('forecast alert', () => {
  let replicas: Harness[];
  let receiver: RecordingUpstream;

  beforeAll(async () => {
    receiver = await startRecordingUpstream();
    receiver.respond = (_req, res) => res.writeHead(204).end();
    const config = editConfig(
      TEST_CONFIG,
      [
        'store: { timeoutMs: 2000 }',
        `store: { timeoutMs: 2000 }
alerts:
  thresholds: [1.0]
  forecast: { daysBeforeReset: 3 }
  webhook: { url: "${receiver.url}/hooks/credits" }`,
      ],
      ['tiny: { ai_tasks: 10,', 'tiny: { ai_tasks: 100,'],
    );
    const prefix = uniquePrefix('forecast-alert');
    replicas = [await startHarness({ config, redis: redisUrl(), keyPrefix: prefix }), await startHarness({ config, redis: redisUrl(), keyPrefix: prefix })];
  });
  afterAll(async () => {
    for (const h of replicas ?? []) await h.close();
    await receiver?.close();
  });

  const spend = async (i: number, a: string, n: number) => {
    const r = await fetch(`${replicas[i % 2]!.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': String(n) } });
    await r.arrayBuffer();
    return r.status;
  };
  const hooksFor = (a: string) => receiver.requests.map((r) => JSON.parse(r.body.toString())).filter((e) => e.account === a);

  it('fires once per pool and cycle when a charge puts the pool on pace to run out 3+ days early, also under concurrent charges on two replicas', async () => {
    const a = `fa-${randomUUID()}`;
    const anchor = new Date(Math.floor((Date.now() - 10 * DAY) / 1000) * 1000).toISOString();
    expect((await replicas[0]!.adminFetch(`/v1/accounts/${a}`, { method: 'PUT', body: JSON.stringify({ plan: 'tiny', billingAnchor: anchor }) })).status).toBe(
      201,
    );
    // 10 of 100 in 10 days: the rest lasts 90 days, well past the reset. No event.
    expect(await spend(0, a, 10)).toBe(200);
    // 40 more at once, over both replicas: from about 38 used the pool is on pace to run out 3+ days early.
    const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => spend(i, a, 1)));
    expect(statuses.every((s) => s === 200)).toBe(true);
    // Later charges in the same cycle send nothing more.
    for (let i = 0; i < 5; i++) expect(await spend(i, a, 1)).toBe(200);

    const deadline = Date.now() + 5000;
    while (hooksFor(a).length === 0 && Date.now() < deadline) await sleep(20);
    // Give a duplicate, were there one, the time to arrive.
    await sleep(300);
    const events = hooksFor(a);
    expect(events.map((e) => e.type)).toEqual(['forecast']);
    const [e] = events;
    expect(e).toMatchObject({
      account: a,
      creditType: { id: 'ai_tasks', name: 'AI Task Credits' },
      allowance: 100,
      topUp: { url: 'https://billing.example.com/add-ons' },
    });
    expect(e.used).toBeGreaterThanOrEqual(38);
    expect(Object.keys(e).sort()).toEqual([
      'account',
      'allowance',
      'createdAt',
      'creditType',
      'exhaustsAt',
      'id',
      'resetsAt',
      'threshold',
      'topUp',
      'type',
      'used',
    ]);
    expect(Date.parse(e.resetsAt) - Date.parse(e.exhaustsAt)).toBeGreaterThanOrEqual(3 * DAY);
    expect(Date.parse(e.exhaustsAt)).toBeGreaterThan(Date.now());
    // The feed holds the one event too.
    const feed = await (await replicas[1]!.adminFetch(`/v1/accounts/${a}/events`)).json();
    expect(feed.events.filter((x: { type: string }) => x.type === 'forecast')).toHaveLength(1);
  });

  it('does not fire when the pool lasts until fewer than daysBeforeReset days before the reset', async () => {
    const a = `fa-${randomUUID()}`;
    const anchor = new Date(Math.floor((Date.now() - 10 * DAY) / 1000) * 1000).toISOString();
    await replicas[0]!.adminFetch(`/v1/accounts/${a}`, { method: 'PUT', body: JSON.stringify({ plan: 'tiny', billingAnchor: anchor }) });
    // 35 in 10 days: 65 left last 18.6 days, about 1.4 days before the reset.
    expect(await spend(0, a, 35)).toBe(200);
    await sleep(300);
    expect(hooksFor(a)).toEqual([]);
  });
});
