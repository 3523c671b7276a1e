// Shadow mode and "announced before enforced" (DESIGN.md rule 10): counted,
// alerted, never refused, would-be refusals logged and counted; enforcement
// starts at enforceFrom with no restart and no reload.

import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { captureLogger } from '../helpers/capture-logger.js';
import { editConfig } from '../helpers/edit-config.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const spend = (harness: Harness, a: string, n: number, path = '/v1/ai/custom') =>
  fetch(`${harness.proxy}${path}`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': String(n) } });
const usage = async (harness: Harness, a: string) => (await harness.adminFetch(`/v1/accounts/${a}/usage`)).json();
const shadowDenied = async (harness: Harness, route: string, creditType: string) => {
  const text = await (await fetch(`${harness.admin}/metrics`)).text();
  const m = new RegExp(`^creditgate_decisions_total\\{route="${route}",credit_type="${creditType}",outcome="shadow_denied"\\} (\\d+)$`, 'm').exec(text);
  return Number(m?.[1]);
};

describe('shadow mode', () => {
  it('mode: shadow never refuses, counts beyond the allowance, and counts and logs would-be refusals', async () => {
    const log = captureLogger();
    h = await startHarness({
      config: editConfig(TEST_CONFIG, ['defaultPlan: tiny', 'defaultPlan: tiny\nmode: shadow']),
      redis: redisUrl(),
      keyPrefix: uniquePrefix('shadow'),
      logger: log.logger,
    });
    const a = `s-${randomUUID()}`;
    expect((await spend(h, a, 8)).status).toBe(200);
    const over = await spend(h, a, 8);
    expect(over.status).toBe(200);
    expect(over.headers.get('ratelimit')).toMatch(/^"ai_tasks";r=0;/);
    expect(h.upstream.requests.filter((r) => r.headers['x-account-id'] === a)).toHaveLength(2);
    expect((await usage(h, a)).pools.ai_tasks).toMatchObject({ used: 10, allowance: 10, remaining: 0 });
    expect(await shadowDenied(h, 'by-header', 'ai_tasks')).toBe(1);
    expect(log.lines.find((l) => l.outcome === 'shadow_denied')).toMatchObject({ route: 'by-header', creditType: 'ai_tasks', wouldBe: 'exhausted', level: 40 });

    // Not in plan: forwarded and counted too.
    const voice = await fetch(`${h.proxy}/v1/voice/calls`, {
      method: 'POST',
      headers: { 'x-account-id': a, 'content-type': 'application/json' },
      body: JSON.stringify({ minutes: 15 }),
    });
    expect(voice.status).toBe(200);
    expect(await shadowDenied(h, 'voice-call', 'voice_minutes')).toBe(1);
    expect(log.lines.find((l) => l.outcome === 'shadow_denied' && l.creditType === 'voice_minutes')).toMatchObject({ wouldBe: 'not-in-plan' });
  });

  it('a route in shadow mode beside enforced routes', async () => {
    const config = editConfig(TEST_CONFIG, ['  - name: by-header\n    method: POST', '  - name: by-header\n    mode: shadow\n    method: POST']);
    h = await startHarness({ config, redis: redisUrl(), keyPrefix: uniquePrefix('shadow-route') });
    const a = `r-${randomUUID()}`;
    expect((await spend(h, a, 10)).status).toBe(200);
    expect((await spend(h, a, 5)).status).toBe(200);
    const enforced = await fetch(`${h.proxy}/v1/ai/followups`, {
      method: 'POST',
      headers: { 'x-account-id': a, 'content-type': 'application/json' },
      body: JSON.stringify({ count: 1 }),
    });
    expect(enforced.status).toBe(402);
  });

  it('enforceFrom in the future is shadow until that instant, then enforced without a reload', async () => {
    const from = new Date(Date.now() + 1500).toISOString();
    const config = editConfig(TEST_CONFIG, ['defaultPlan: tiny', `defaultPlan: tiny\nenforceFrom: "${from}"`]);
    h = await startHarness({ config, redis: redisUrl(), keyPrefix: uniquePrefix('enforce-from') });
    const a = `e-${randomUUID()}`;
    expect((await spend(h, a, 10)).status).toBe(200);
    expect((await spend(h, a, 1)).status).toBe(200);
    await new Promise((r) => setTimeout(r, Date.parse(from) - Date.now() + 50));
    const after = await spend(h, a, 1);
    expect(after.status).toBe(402);
    expect((await after.json()).remaining).toBe(0);
  });

  it('enforceFrom per credit type: only that type is in shadow', async () => {
    const config = editConfig(
      TEST_CONFIG,
      ['ai_tasks: { name: AI Task Credits,', `ai_tasks: { name: AI Task Credits, enforceFrom: "${new Date(Date.now() + 3600_000).toISOString()}",`],
      ['email_verification: { name: Email Verification,', 'email_verification: { name: Email Verification, enforceFrom: "2020-01-01T00:00:00Z",'],
    );
    h = await startHarness({ config, redis: redisUrl(), keyPrefix: uniquePrefix('enforce-type') });
    const a = `t-${randomUUID()}`;
    expect((await spend(h, a, 50)).status).toBe(200);
    const verify = (n: number) =>
      fetch(`${h!.proxy}/v1/emails/verify`, {
        method: 'POST',
        headers: { 'x-account-id': a, 'content-type': 'application/json' },
        body: JSON.stringify({ emails: Array.from({ length: n }, (_, i) => `${i}@x`) }),
      });
    expect((await verify(5)).status).toBe(200);
    expect((await verify(1)).status).toBe(402);
  });

  it('refuses an enforceFrom that is not an instant, naming the line', async () => {
    await expect(startHarness({ config: editConfig(TEST_CONFIG, ['defaultPlan: tiny', 'defaultPlan: tiny\nenforceFrom: "August 7, 2025"']) })).rejects.toThrow(
      /credits\.yaml:4 enforceFrom: expected an ISO 8601 instant/,
    );
  });
});
