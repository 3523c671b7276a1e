// Threshold alerts end to end: real webhook receiver, real SMTP server, real
// Redis, concurrent requests crossing thresholds together.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySignature } from '../../src/alerts/webhook-signature.js';
import { editConfig } from '../helpers/edit-config.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { startSmtpReceiver, type SmtpReceiver } from '../helpers/smtp-receiver.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const SECRET = 'whsec_test_0123456789';

async function until<T>(fn: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('threshold alerts', () => {
  let h: Harness;
  let receiver: RecordingUpstream;
  let smtp: SmtpReceiver;
  let failNext = 0;

  beforeAll(async () => {
    process.env.CG_TEST_WEBHOOK_SECRET = SECRET;
    receiver = await startRecordingUpstream();
    receiver.respond = (_req, res) => {
      if (failNext > 0) {
        failNext -= 1;
        res.writeHead(503).end();
        return;
      }
      res.writeHead(204).end();
    };
    smtp = await startSmtpReceiver();
    const config = editConfig(
      TEST_CONFIG,
      [
        'store: { timeoutMs: 2000 }',
        `store: { timeoutMs: 2000 }
alerts:
  thresholds: [0.8, 1.0]
  webhook: { url: "${receiver.url}/hooks/credits", secret: env:CG_TEST_WEBHOOK_SECRET, maxAttempts: 5 }
  email: { smtp: "${smtp.url}", from: billing@example.com }`,
      ],
      ['tiny: { ai_tasks: 10,', 'tiny: { ai_tasks: 250,'],
    );
    h = await startHarness({ config, redis: redisUrl(), keyPrefix: uniquePrefix('alerts'), alertRetryBaseMs: 20 });
  });
  afterAll(async () => {
    await h.close();
    await receiver.close();
    await smtp.close();
  });

  const spend = (a: string, n: number) =>
    fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': String(n) } }).then(async (r) => {
      await r.arrayBuffer();
      return r.status;
    });
  const hooksFor = (a: string) => receiver.requests.filter((r) => JSON.parse(r.body.toString()).account === a);

  it('300 concurrent requests crossing 80 % and 100 % produce exactly one event of each', async () => {
    const a = `race-${randomUUID()}`;
    const statuses = await Promise.all(Array.from({ length: 300 }, () => spend(a, 1)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(250);
    await h.sidecar.flushAlerts();
    const events = (await (await h.adminFetch(`/v1/accounts/${a}/events`)).json()).events;
    expect(events.map((e: { type: string; threshold: number }) => [e.type, e.threshold])).toEqual([
      ['exhausted', 1],
      ['threshold_reached', 0.8],
    ]);
    const hooks = hooksFor(a);
    expect(hooks).toHaveLength(2);
    expect(hooks.map((r) => JSON.parse(r.body.toString()).type).sort()).toEqual(['exhausted', 'threshold_reached']);
  });

  it('the webhook body is the pinned event shape, and its signature verifies', async () => {
    const a = `shape-${randomUUID()}`;
    expect(await spend(a, 200)).toBe(200);
    const hook = await until(() => hooksFor(a)[0], 'the webhook');
    const body = hook.body.toString();
    const event = JSON.parse(body);
    expect(Object.keys(event).sort()).toEqual(
      ['account', 'allowance', 'createdAt', 'creditType', 'id', 'resetsAt', 'threshold', 'topUp', 'type', 'used'].sort(),
    );
    const usage = await (await h.adminFetch(`/v1/accounts/${a}/usage`)).json();
    expect(event).toMatchObject({
      type: 'threshold_reached',
      account: a,
      creditType: { id: 'ai_tasks', name: 'AI Task Credits' },
      used: 200,
      allowance: 250,
      threshold: 0.8,
      resetsAt: usage.cycle.end,
      topUp: { url: 'https://billing.example.com/add-ons' },
    });
    expect(hook.url).toBe('/hooks/credits');
    expect(hook.headers['content-type']).toBe('application/json');
    const signature = String(hook.headers['creditgate-signature']);
    expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature(SECRET, body, signature)).toBe(true);
    expect(verifySignature('wrong-secret', body, signature)).toBe(false);
    expect(verifySignature(SECRET, body.replace('200', '201'), signature)).toBe(false);
  });

  it('a failing receiver is retried with backoff until it accepts; one delivery per event', async () => {
    const a = `retry-${randomUUID()}`;
    failNext = 2;
    expect(await spend(a, 250)).toBe(200);
    await h.sidecar.flushAlerts();
    const hooks = hooksFor(a);
    // 0.8 and 1.0 fire in the same charge: two events; two failed attempts before them.
    expect(hooks.length).toBe(4);
    const accepted = new Set(hooks.slice(2).map((r) => JSON.parse(r.body.toString()).id));
    expect(accepted.size).toBe(2);
  });

  it('e-mails the account in plain text and HTML, saying when the pool resets', async () => {
    const a = `mail-${randomUUID()}`;
    await h.adminFetch(`/v1/accounts/${a}`, { method: 'PUT', body: JSON.stringify({ plan: 'tiny', email: 'owner@example.com' }) });
    expect(await spend(a, 200)).toBe(200);
    const mail = await until(() => smtp.messages.find((m) => m.text?.includes(a)), 'the e-mail');
    expect(mail.from?.text).toBe('billing@example.com');
    expect((Array.isArray(mail.to) ? mail.to[0] : mail.to)?.text).toBe('owner@example.com');
    const usage = await (await h.adminFetch(`/v1/accounts/${a}/usage`)).json();
    const day = new Date(usage.cycle.end).toLocaleDateString('en-GB', { day: 'numeric', month: 'long', timeZone: 'UTC' });
    expect(mail.subject).toBe('AI Task Credits: 80 % used');
    expect(mail.text).toContain(`You have used 80 % of your AI Task Credits. They reset on ${day}.`);
    expect(mail.text).toContain('https://billing.example.com/add-ons');
    expect(mail.html).toContain('<strong>You have used 80 % of your AI Task Credits.</strong>');
  });

  it('accounts without an e-mail get the webhook only; the events feed lists newest first', async () => {
    const a = `feed-${randomUUID()}`;
    const before = smtp.messages.length;
    expect(await spend(a, 210)).toBe(200);
    expect(await spend(a, 40)).toBe(200);
    await h.sidecar.flushAlerts();
    expect(smtp.messages.slice(before).some((m) => m.text?.includes(a))).toBe(false);
    const feed = (await (await h.adminFetch(`/v1/accounts/${a}/events?limit=10`)).json()).events;
    expect(feed.map((e: { type: string }) => e.type)).toEqual(['exhausted', 'threshold_reached']);
    expect(Date.parse(feed[0].createdAt)).toBeGreaterThanOrEqual(Date.parse(feed[1].createdAt));
    expect((await h.adminFetch(`/v1/accounts/${a}/events?limit=0`)).status).toBe(400);
  });
});
