// The admin CLI against a running sidecar's admin API, over real sockets.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/run-cli.js';
import { ADMIN_TOKEN, startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

describe('creditgate admin CLI', () => {
  let h: Harness;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    h = await startHarness({ config: TEST_CONFIG, redis: redisUrl(), keyPrefix: uniquePrefix('cli') });
    env = { CREDITGATE_ADMIN_URL: h.admin, CREDITGATE_ADMIN_TOKEN: ADMIN_TOKEN };
  });
  afterAll(async () => h.close());

  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCli(args, { ...env, ...extra });

  it('accounts set, accounts get, usage, topup, topups, events, accounts delete', async () => {
    const id = `cli-${randomUUID().slice(0, 8)}`;
    const set = await cli(['accounts', 'set', id, '--plan', 'big', '--anchor', '2025-01-31T09:00:00Z', '--email', 'ops@example.com']);
    expect(set.stderr).toBe('');
    expect(set.status).toBe(0);
    expect(set.stdout.trim()).toBe(`account ${id}: plan big, billing anchor 2025-01-31T09:00:00Z, e-mail ops@example.com`);

    const get = await cli(['accounts', 'get', id]);
    expect(get.stdout).toMatch(new RegExp(`account\\s+${id}\\nplan\\s+big\\nbilling anchor\\s+2025-01-31T09:00:00Z\\ne-mail\\s+ops@example.com`));

    await fetch(`${h.proxy}/v1/contacts/1/enrich`, { method: 'POST', headers: { 'x-account-id': id } });
    const topup = await cli(['topup', id, '--type', 'database', '--amount', '250', '--idempotency-key', 'inv-1']);
    expect(topup.status).toBe(0);
    expect(topup.stdout).toMatch(new RegExp(`^top-up tu_\\w+: 250 database for ${id}, expires \\d{4}-\\d{2}-\\d{2}T09:00:00Z`));

    const usage = await cli(['usage', id]);
    expect(usage.status).toBe(0);
    const lines = usage.stdout.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^account ${id}, plan big, cycle \\S+ → \\S+$`));
    expect(lines[1]).toMatch(/^credit type\s+used\s+allowance\s+remaining\s+resets\s+per day\s+runs out$/);
    expect(usage.stdout).toMatch(/database\s+1\s+1,250\s+1,249\s+\d{4}-\d{2}-\d{2}T09:00:00Z/);
    expect(usage.stdout).toMatch(/ai_tasks\s+0\s+unlimited\s+unlimited/);
    expect(usage.stdout).toMatch(/mailboxes\s+0\s+5\s+5\s+-/);

    // Anchored 10 days ago with half of ai_tasks used: 0.5 a day, runs out 10 days from now; unused pools last.
    const paced = `cli-${randomUUID().slice(0, 8)}`;
    const anchor = new Date(Math.floor((Date.now() - 10 * 86_400_000) / 1000) * 1000).toISOString();
    expect((await cli(['accounts', 'set', paced, '--plan', 'tiny', '--anchor', anchor])).status).toBe(0);
    await (await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': paced, 'x-task-count': '5' } })).arrayBuffer();
    const pacedOut = (await cli(['usage', paced])).stdout;
    const m = /^ai_tasks\s+5\s+10\s+5\s+\S+\s+0\.5\s+(\S+)$/m.exec(pacedOut);
    expect(m, pacedOut).not.toBeNull();
    expect(Math.abs(Date.parse(m![1]!) - (Date.now() + 10 * 86_400_000))).toBeLessThan(60_000);
    expect(pacedOut).toMatch(/^database\s+0\s+5\s+5\s+\S+\s+0\s+-$/m);

    const json = JSON.parse((await cli(['usage', id, '--json'])).stdout);
    expect(json.pools.database).toMatchObject({ used: 1, allowance: 1250 });

    const topups = await cli(['topups', id]);
    expect(topups.stdout).toMatch(/tu_\w+\s+database\s+250\s+250/);

    const events = await cli(['events', id]);
    expect(events.stdout.trim()).toBe('no events');

    const del = await cli(['accounts', 'delete', id]);
    expect(del.status).toBe(0);
    const gone = await cli(['accounts', 'get', id]);
    expect(gone.status).toBe(1);
    expect(gone.stderr).toContain(`no such account: ${id}`);
  });

  it('a wrong token is a clear error, exit 1', async () => {
    const r = await cli(['usage', 'x'], { CREDITGATE_ADMIN_TOKEN: 'wrong' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('refused the token (401): check CREDITGATE_ADMIN_TOKEN');
  });

  it('no token set is a usage error, exit 2', async () => {
    const r = await cli(['usage', 'x'], { CREDITGATE_ADMIN_TOKEN: '' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('set CREDITGATE_ADMIN_TOKEN');
  });

  it('an unreachable server is a clear error, exit 1', async () => {
    // Port 2 on loopback: a privileged port nothing listens on (and not one fetch refuses to use), while a
    // "free" port may be taken by a parallel test in between.
    const port = 2;
    const r = await cli(['accounts', 'get', 'x', '--admin-url', `http://127.0.0.1:${port}`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`cannot reach the admin API at http://127.0.0.1:${port} (ECONNREFUSED)`);
  });

  it('bad input from the API is passed on; missing flags are usage errors', async () => {
    const bad = await cli(['topup', 'x', '--type', 'sms', '--amount', '5']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('unknown credit type "sms"');
    const huge = await cli(['topup', 'x', '--type', 'ai_tasks', '--amount', '1000000000001']);
    expect(huge.status).toBe(1);
    expect(huge.stderr).toContain('amount must be a whole number from 1 to 1,000,000,000,000');
    const missing = await cli(['topup', 'x', '--type', 'ai_tasks']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('--amount');
    const plan = await cli(['accounts', 'set', 'x', '--plan', 'gold']);
    expect(plan.status).toBe(1);
    expect(plan.stderr).toContain('unknown plan "gold"');
    const flag = await cli(['usage', 'x', '--bogus']);
    expect(flag.status).toBe(2);
  });
});
