// What SREs see: /metrics after real traffic (no account ids anywhere), and
// the log lines for refusals and store errors, with request ids.

import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger, type CapturedLogger } from '../helpers/capture-logger.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^[^{ ]+(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const have = Object.fromEntries([...(m[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[2]);
  }
  return undefined;
}

describe('metrics and logs', () => {
  let h: Harness;
  let log: CapturedLogger;
  const accounts: string[] = [];
  beforeAll(async () => {
    log = captureLogger('info');
    h = await startHarness({ config: TEST_CONFIG, redis: redisUrl(), keyPrefix: uniquePrefix('metrics'), logger: log.logger });
  });
  afterAll(async () => h.close());

  const metrics = async () => {
    const r = await fetch(`${h.admin}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/plain');
    return r.text();
  };
  const acct = () => {
    const a = `m-${randomUUID()}`;
    accounts.push(a);
    return a;
  };

  it('known label sets exist at 0 before any traffic; the config is identified', async () => {
    const text = await metrics();
    expect(sample(text, 'creditgate_decisions_total', { route: 'generate-followups', credit_type: 'ai_tasks', outcome: 'exhausted' })).toBe(0);
    expect(sample(text, 'creditgate_decisions_total', { route: 'by-header', credit_type: 'none', outcome: 'unauthenticated' })).toBe(0);
    expect(sample(text, 'creditgate_credits_charged_total', { credit_type: 'ai_tasks', plan: 'tiny' })).toBe(0);
    expect(sample(text, 'creditgate_credits_refunded_total', { credit_type: 'ai_tasks', reason: 'upstream_error' })).toBe(0);
    expect(sample(text, 'creditgate_topup_credits_granted_total', { credit_type: 'database' })).toBe(0);
    expect(sample(text, 'creditgate_store_errors_total', { operation: 'charge' })).toBe(0);
    expect(sample(text, 'creditgate_config_reloads_total', { result: 'error' })).toBe(0);
    expect(sample(text, 'creditgate_alerts_sent_total', { channel: 'webhook', result: 'failed' })).toBe(0);
    expect(sample(text, 'creditgate_accounts_exhausted', { credit_type: 'ai_tasks' })).toBe(0);
    expect(sample(text, 'creditgate_http_requests_total', { route: 'generate-followups', status_class: '4xx' })).toBe(0);
    expect(text).toMatch(/^creditgate_config_info\{config_hash="[0-9a-f]{12}"\} 1$/m);
    // The Node process metrics are there too.
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
  });

  it('the whole /metrics page, after traffic and with the process metrics, passes promtool check metrics', async () => {
    const a = acct();
    for (let i = 0; i < 12; i++) {
      await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '1' } }).then((r) => r.arrayBuffer());
    }
    const text = await metrics();
    const check = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
    expect(text).toMatch(/^nodejs_active_handles\{/m);
  });

  it('counts decisions, credits, latencies and exhausted accounts after real traffic', async () => {
    const spend = (a: string, n: string) => fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': n } });
    const before = await metrics();
    const allowedBefore = sample(before, 'creditgate_decisions_total', { route: 'by-header', credit_type: 'ai_tasks', outcome: 'allowed' })!;
    const [a, b, c] = [acct(), acct(), acct()];
    expect((await spend(a, '10')).status).toBe(200);
    expect((await spend(a, '1')).status).toBe(402);
    expect((await spend(b, '10')).status).toBe(200);
    expect((await spend(c, '3')).status).toBe(200);
    expect((await spend(c, 'x')).status).toBe(400);
    await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST' });
    await fetch(`${h.proxy}/v1/unrouted`);
    await h.adminFetch(`/v1/accounts/${c}/topups`, { method: 'POST', body: JSON.stringify({ creditType: 'database', amount: 40 }) });

    const text = await metrics();
    const d = (outcome: string, creditType = 'ai_tasks') =>
      sample(text, 'creditgate_decisions_total', { route: 'by-header', credit_type: creditType, outcome });
    expect(d('allowed')! - allowedBefore).toBe(3);
    expect(d('exhausted')).toBeGreaterThanOrEqual(1);
    expect(d('bad_request', 'none')).toBeGreaterThanOrEqual(1);
    expect(d('unauthenticated', 'none')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'creditgate_credits_charged_total', { credit_type: 'ai_tasks', plan: 'tiny' })).toBeGreaterThanOrEqual(23);
    expect(sample(text, 'creditgate_topup_credits_granted_total', { credit_type: 'database' })).toBeGreaterThanOrEqual(40);
    expect(sample(text, 'creditgate_accounts_exhausted', { credit_type: 'ai_tasks' })).toBeGreaterThanOrEqual(2);
    // The 402 for an account just emptied comes from this replica's memory: three charges reached the store.
    expect(sample(text, 'creditgate_store_duration_seconds_count', { operation: 'charge' })).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'creditgate_upstream_duration_seconds_count', { route: 'by-header', status_class: '2xx' })).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'creditgate_http_requests_total', { route: 'by-header', status_class: '4xx' })).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'creditgate_http_requests_total', { route: '(unmatched)', status_class: '2xx' })).toBeGreaterThanOrEqual(1);
    for (const account of accounts) expect(text).not.toContain(account);
  });

  it('logs one line per refusal with route, credit type, outcome and request id; ids reach the upstream and the client', async () => {
    const a = acct();
    await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '10' } });
    const r = await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '5', 'x-request-id': 'req-abc-123' } });
    expect(r.status).toBe(402);
    expect(r.headers.get('x-request-id')).toBe('req-abc-123');
    const line = log.lines.find((l) => l.requestId === 'req-abc-123');
    expect(line).toMatchObject({ route: 'by-header', creditType: 'ai_tasks', outcome: 'exhausted', msg: 'request refused', level: 30 });
    expect(log.lines.filter((l) => l.requestId === 'req-abc-123')).toHaveLength(1);

    const ok = await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': acct(), 'x-task-count': '1' } });
    const generated = ok.headers.get('x-request-id');
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    expect(h.upstream.requests.at(-1)!.headers['x-request-id']).toBe(generated);
    // Logs never carry credentials.
    expect(JSON.stringify(log.lines)).not.toContain('test-admin-token');
  });
});
