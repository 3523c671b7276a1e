// `creditgate stripe sync` against a local stand-in for Stripe's
// GET /v1/subscriptions (two pages), and `creditgate accounts import`, both
// through a running sidecar's admin API.

import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/run-cli.js';
import { ADMIN_TOKEN, startHarness, TEST_CONFIG, writeConfig, type Harness } from '../helpers/sidecar-harness.js';
import { STRIPE_BILLING, subscription } from '../helpers/stripe-events.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const JAN_31 = Date.UTC(2026, 0, 31) / 1000;
const run = randomUUID().slice(0, 8);
const id = (label: string) => `${label}-${run}`;

/** Stripe's list format, in pages of 4, following `starting_after` as the real API does. */
function fakeStripe(subscriptions: object[]) {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url} ${req.headers.authorization}`);
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method !== 'GET' || url.pathname !== '/v1/subscriptions') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { type: 'invalid_request_error', message: 'no such route' } }));
      return;
    }
    const after = url.searchParams.get('starting_after');
    const start = after === null ? 0 : subscriptions.findIndex((s) => (s as { id: string }).id === after) + 1;
    const data = subscriptions.slice(start, start + 4);
    res
      .writeHead(200, { 'content-type': 'application/json', 'request-id': 'req_test' })
      .end(JSON.stringify({ object: 'list', url: '/v1/subscriptions', has_more: start + 4 < subscriptions.length, data }));
  });
  return { server, requests };
}

describe('creditgate stripe sync and accounts import', () => {
  let h: Harness;
  let stripe: ReturnType<typeof fakeStripe>;
  let env: NodeJS.ProcessEnv;
  let configPath: string;
  beforeAll(async () => {
    const config = TEST_CONFIG + STRIPE_BILLING('delete').replace('    accountFrom:', '    apiKey: env:STRIPE_API_KEY\n    accountFrom:');
    h = await startHarness({ config, redis: redisUrl(), keyPrefix: uniquePrefix('billing-cli') });
    configPath = h.configPath;
    const sub = (n: number, fields: Parameters<typeof subscription>[0]) => ({
      ...subscription({ id: `sub_${n}`, anchor: JAN_31, ...fields }),
      created: 1_700_000_000 + n,
    });
    stripe = fakeStripe([
      sub(1, { account: id('up'), prices: ['price_big_monthly'] }),
      sub(2, { account: id('same'), prices: ['price_big_yearly'] }),
      sub(3, { account: id('new'), status: 'trialing', prices: ['price_tiny_monthly'] }),
      sub(4, { account: id('unmapped'), prices: ['price_unknown'] }),
      sub(5, { account: id('cancel'), prices: ['price_big_monthly'] }),
      // The same account's newer subscription decides: it was canceled.
      sub(6, { account: id('cancel'), status: 'canceled' }),
      sub(7, { prices: ['price_big_monthly'] }),
      sub(8, { account: id('incomplete'), status: 'incomplete' }),
    ]);
    await new Promise<void>((r) => stripe.server.listen(0, '127.0.0.1', r));
    env = {
      CREDITGATE_ADMIN_TOKEN: ADMIN_TOKEN,
      STRIPE_API_KEY: 'sk_test_creditgate',
      STRIPE_API_BASE: `http://127.0.0.1:${(stripe.server.address() as AddressInfo).port}`,
    };
  });
  afterAll(async () => {
    await h.close();
    await new Promise((r) => stripe.server.close(r));
  });

  const plan = async (account: string) => {
    const r = await h.adminFetch(`/v1/accounts/${account}`);
    return r.status === 200 ? ((await r.json()) as { plan: string }).plan : null;
  };
  const put = (account: string, body: object) => h.adminFetch(`/v1/accounts/${account}`, { method: 'PUT', body: JSON.stringify(body) });

  it('sync: --dry-run says what would change and changes nothing; then applies, and a second run finds nothing to do', async () => {
    await put(id('up'), { plan: 'tiny' });
    await put(id('same'), { plan: 'big', billingAnchor: '2026-01-31T00:00:00Z' });
    await put(id('cancel'), { plan: 'big' });
    const sync = (...extra: string[]) => runCli(['stripe', 'sync', '--config', configPath, '--admin', h.admin, ...extra], env);

    const dry = await sync('--dry-run');
    expect(dry.stderr).toBe('');
    expect(dry.status).toBe(0);
    expect(dry.stdout).toContain(`would set ${id('up')}: plan big from 2026-01-31T00:00:00Z (was tiny from`);
    expect(dry.stdout).toContain(`would set ${id('new')}: plan tiny from 2026-01-31T00:00:00Z (new)`);
    expect(dry.stdout).toContain(`would delete ${id('cancel')}`);
    expect(dry.stdout).toContain(`unmapped: ${id('unmapped')} (subscription sub_4, prices price_unknown)`);
    expect(dry.stdout.trim().split('\n').at(-1)).toBe('dry run: 2 applied, 1 unchanged, 1 unmapped, 1 canceled, 2 ignored');
    expect([await plan(id('up')), await plan(id('new')), await plan(id('cancel'))]).toEqual(['tiny', null, 'big']);

    const real = await sync();
    expect(real.status).toBe(0);
    expect(real.stdout.trim().split('\n').at(-1)).toBe('2 applied, 1 unchanged, 1 unmapped, 1 canceled, 2 ignored');
    expect([await plan(id('up')), await plan(id('same')), await plan(id('new')), await plan(id('cancel')), await plan(id('unmapped'))]).toEqual([
      'big',
      'big',
      'tiny',
      null,
      null,
    ]);
    const again = await sync('--json');
    expect(JSON.parse(again.stdout)).toEqual({ applied: 0, unchanged: 4, unmapped: 1, canceled: 0, ignored: 2, dryRun: false });
    // Two pages per run, the second asked for after the first page's last subscription, with the configured key.
    expect(stripe.requests.filter((r) => r.includes('starting_after=sub_4'))).toHaveLength(3);
    expect(stripe.requests.every((r) => r.startsWith('GET /v1/subscriptions?') && r.endsWith('Bearer sk_test_creditgate'))).toBe(true);
  });

  it('import: any bad line fails the whole file with FILE:line reasons, nothing applied', async () => {
    const file = writeConfig('');
    const lines = [
      JSON.stringify({ account: id('imp-ok'), plan: 'big' }),
      '{"account": "x", "plan": ',
      JSON.stringify({ account: id('imp-plan'), plan: 'gold' }),
      JSON.stringify({ account: id('imp-anchor'), plan: 'tiny', billingAnchor: 'next tuesday' }),
      JSON.stringify({ account: id('imp-ok'), plan: 'tiny', extra: 1 }),
      JSON.stringify({ account: id('imp-ok'), plan: 'tiny' }),
    ];
    writeFileSync(file, `${lines.join('\n')}\n`);
    const r = await runCli(['accounts', 'import', file, '--config', configPath, '--admin-url', h.admin], env);
    expect(r.status).toBe(1);
    const errors = r.stderr.trim().split('\n');
    expect(errors.slice(0, -1).map((e) => e.slice(0, e.indexOf(': ')))).toEqual([`${file}:2`, `${file}:3`, `${file}:4`, `${file}:5`, `${file}:6`]);
    expect(r.stderr).toContain(`${file}:3: unknown plan "gold"`);
    expect(r.stderr).toContain(`${file}:6: account ${id('imp-ok')} is also on line 1`);
    expect(errors.at(-1)).toBe('5 bad lines: nothing imported');
    expect(await plan(id('imp-ok'))).toBeNull();
  });

  it('import: a good file is applied through the admin API, and a second run changes nothing', async () => {
    const file = writeConfig('');
    writeFileSync(
      file,
      [
        JSON.stringify({ account: id('imp-a'), plan: 'big', billingAnchor: '2026-01-31T00:00:00Z', email: 'a@example.com' }),
        '',
        JSON.stringify({ account: id('imp-b'), plan: 'tiny' }),
      ].join('\n'),
    );
    const first = await runCli(['accounts', 'import', file, '--admin-url', h.admin], env);
    expect(first.stderr).toBe('');
    expect(first.stdout.trim()).toBe('2 accounts: 2 applied, 0 unchanged');
    expect([await plan(id('imp-a')), await plan(id('imp-b'))]).toEqual(['big', 'tiny']);
    const second = await runCli(['accounts', 'import', file, '--admin-url', h.admin], env);
    expect(second.stdout.trim()).toBe('2 accounts: 0 applied, 2 unchanged');
  });
});
