// `creditgate explain` (the built command) against a live sidecar: for every
// route of the example config the dry run names the route and the amounts the
// sidecar really charges; and each outcome it can report.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger } from '../helpers/capture-logger.js';
import { editConfig } from '../helpers/edit-config.js';
import { runCli } from '../helpers/run-cli.js';
import { ADMIN_TOKEN, startHarness, writeConfig, type Harness } from '../helpers/sidecar-harness.js';

const EXAMPLE = 'config/credits.example.yaml';
const exampleText = readFileSync(EXAMPLE, 'utf8');

interface Sample {
  readonly method: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: unknown;
}

// One request per route of the example; a route added without one fails the test below.
const SAMPLES: Record<string, Sample> = {
  'generate-followups': { method: 'POST', path: '/v1/ai/followups', body: { count: 25 } },
  'verify-emails': { method: 'POST', path: '/v1/emails/verify', body: { emails: ['a@x.io', 'b@x.io', 'c@x.io'] } },
  'save-contacts': { method: 'POST', path: '/v1/contacts/lookup', body: { contacts: [1, 2, 3, 4] } },
  'enrich-contact': { method: 'POST', path: '/v1/contacts/7/enrich', body: { fields: ['email'] } },
  'voice-call': { method: 'POST', path: '/v1/voice/calls', body: { minutes: 15 } },
  'website-intel': { method: 'POST', path: '/v1/website-intel/resolve', body: { visits: [1, 2] } },
  'knowledge-pages': { method: 'POST', path: '/v1/knowledge/pages', body: { pages: ['a', 'b', 'c'] } },
  'connect-mailbox': { method: 'POST', path: '/v1/mailboxes' },
  'disconnect-mailbox': { method: 'DELETE', path: '/v1/mailboxes/mb1' },
  'connect-linkedin': { method: 'POST', path: '/v1/linkedin/accounts' },
  'disconnect-linkedin': { method: 'DELETE', path: '/v1/linkedin/accounts/li1' },
  'ai-custom': { method: 'POST', path: '/v1/ai/custom', headers: { 'x-task-count': '7' } },
};

function explainArgs(s: Sample, config = EXAMPLE): string[] {
  return [
    'explain',
    '--config',
    config,
    s.method,
    s.path,
    ...Object.entries(s.headers ?? {}).flatMap(([k, v]) => ['--header', `${k}: ${v}`]),
    ...(s.body === undefined ? [] : ['--body', JSON.stringify(s.body)]),
    '--json',
  ];
}

async function explain(args: string[]): Promise<Record<string, unknown>> {
  const r = await runCli(args);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** `ai_tasks=25, database=1` → { ai_tasks: 25, database: 1 } */
const parseCharged = (h: string | string[] | undefined): Record<string, number> =>
  Object.fromEntries(
    (typeof h === 'string' && h !== '' ? h.split(',') : []).map((p) => {
      const [k, v] = p.trim().split('=');
      return [k!, Number(v)];
    }),
  );

describe('creditgate explain agrees with a live sidecar', () => {
  const log = captureLogger('debug');
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: exampleText, logger: log.logger });
    // Every credit type in its plan, so that no route is refused.
    expect((await h.adminFetch('/v1/accounts/explain-all', { method: 'PUT', body: JSON.stringify({ plan: 'unlimited' }) })).ok).toBe(true);
    // The voice call settles from its length: 10 minutes.
    h.upstream.respond = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', ...(req.url === '/v1/voice/calls' ? { 'x-call-seconds': '600' } : {}) });
      res.end('{"ok":true}');
    };
  });
  afterAll(async () => h.close());

  it('has a sample request for every route of the example config', () => {
    const routes = exampleText.match(/^ {2}- name: (\S+)/gm)!.map((l) => l.split(': ')[1]);
    expect(Object.keys(SAMPLES).sort()).toEqual(routes.sort());
  });

  for (const [name, sample] of Object.entries(SAMPLES)) {
    it(`${name}: the route and the amounts explain reports are what the sidecar charges`, async () => {
      const e = await explain(explainArgs(sample));
      expect(e.route).toEqual({ name, index: expect.any(Number) });
      const lines = e.charges as { creditType: string; amount: number; op?: string; hold?: boolean }[];
      const charged = Object.fromEntries(lines.filter((c) => c.op !== 'release').map((c) => [c.creditType, c.amount]));
      const held = Object.fromEntries(lines.filter((c) => c.hold).map((c) => [c.creditType, c.amount]));

      const before = h.upstream.requests.length;
      const res = await fetch(`${h.proxy}${sample.path}`, {
        method: sample.method,
        headers: { 'x-account-id': 'explain-all', 'content-type': 'application/json', ...sample.headers },
        ...(sample.body === undefined ? {} : { body: JSON.stringify(sample.body) }),
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      const got = h.upstream.requests[before]!;
      expect(parseCharged(got.headers['creditgate-charged'])).toEqual(charged);
      expect(parseCharged(got.headers['creditgate-reserved'])).toEqual(held);
      expect(e.outcome).toBe(lines.some((c) => c.op !== 'release') ? 'charge' : 'release');
      // The route the sidecar decided on, from its own decision log.
      const decided = log.lines.filter((l) => l.msg === 'decision').at(-1);
      expect(decided?.route).toBe(name);
    });
  }
});

describe('creditgate explain outcomes', () => {
  it('unmatched-pass and unmatched-reject follow the config', async () => {
    expect(await explain(['explain', '--config', EXAMPLE, 'GET', '/v1/nothing/here', '--json'])).toEqual({
      outcome: 'unmatched-pass',
      forwardUrl: '/v1/nothing/here',
    });
    const rejecting = writeConfig(editConfig(exampleText, ['unmatched: pass', 'unmatched: reject']));
    const e = await explain(['explain', '--config', rejecting, 'GET', '/v1/nothing/here', '--json']);
    expect(e.outcome).toBe('unmatched-reject');
    expect(e.reason).toContain('/v1/nothing/here');
  });

  it('invalid-cost names the credit type and the reason', async () => {
    const e = await explain(explainArgs({ method: 'POST', path: '/v1/ai/custom', headers: { 'x-task-count': '1e3' } }));
    expect(e).toMatchObject({ route: { name: 'ai-custom' }, outcome: 'invalid-cost' });
    expect(e.reason).toBe('ai_tasks: header "x-task-count" must be a whole number');
    const missing = await explain(explainArgs({ method: 'POST', path: '/v1/ai/followups', body: {} }));
    expect(missing.reason).toBe('ai_tasks: missing body field "count"');
  });

  it('bad-request for a path the normaliser refuses, a body over the limit and one nested too deep', async () => {
    const path = await explain(explainArgs({ method: 'POST', path: '/v1%2Fai/followups' }));
    expect(path).toEqual({ outcome: 'bad-request', reason: 'encoded slashes are not accepted in paths' });
    const small = writeConfig(`${exampleText}\nlimits: { maxBodyBytes: 64, maxJsonDepth: 4 }\n`);
    const big = await explain(explainArgs({ method: 'POST', path: '/v1/emails/verify', body: { emails: Array(20).fill('someone@x.io') } }, small));
    expect(big).toMatchObject({ outcome: 'bad-request', route: { name: 'verify-emails' } });
    expect(big.reason).toContain('at most 64 bytes');
    const deep = await explain(explainArgs({ method: 'POST', path: '/v1/ai/followups', body: { count: 1, x: [[[[[1]]]]] } }, small));
    expect(deep).toMatchObject({ outcome: 'bad-request', reason: 'request body nests deeper than 4 levels' });
  });

  it('reads the body from a file and adds --query to the path', async () => {
    const bodyFile = join(dirname(writeConfig('')), 'body.json');
    writeFileSync(bodyFile, JSON.stringify({ pages: ['a', 'b'] }));
    const fromFile = await explain(['explain', '--config', EXAMPLE, 'POST', '/v1/knowledge/pages', '--body', `@${bodyFile}`, '--json']);
    expect(fromFile).toMatchObject({ outcome: 'charge', charges: [{ creditType: 'knowledge_pages', amount: 2 }] });
    const byQuery = writeConfig(editConfig(exampleText, ['charge: { ai_tasks: { header: x-task-count } }', 'charge: { ai_tasks: { query: n } }']));
    const q = await explain(['explain', '--config', byQuery, 'POST', '/v1/ai/custom?x=1', '--query', 'n=9', '--json']);
    expect(q).toMatchObject({ forwardUrl: '/v1/ai/custom?x=1&n=9', charges: [{ creditType: 'ai_tasks', amount: 9 }] });
  });

  it('normalises the path and honours a method override as the sidecar does', async () => {
    const e = await explain(explainArgs({ method: 'GET', path: '//v1/x/../ai/%63ustom', headers: { 'x-http-method-override': 'POST', 'x-task-count': '3' } }));
    expect(e).toMatchObject({ route: { name: 'ai-custom' }, outcome: 'charge', forwardUrl: '/v1/ai/custom', charges: [{ creditType: 'ai_tasks', amount: 3 }] });
  });

  it('prints the route and the charge for people, and exits 2 on bad arguments, 1 on an unreadable config', async () => {
    const r = await runCli(['explain', '--config', EXAMPLE, 'POST', '/v1/contacts/7/enrich', '--body', '{"fields": ["email"]}']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^route {3}enrich-contact \(routes\[3\], first match\)\ncharge {2}database 1 · email_verification 1 {3}\(all or nothing\)\n$/);
    expect((await runCli(['explain', '--config', EXAMPLE, 'POST'])).status).toBe(2);
    expect((await runCli(['explain', '--config', EXAMPLE, 'POST', '/x', '--header', 'no colon'])).status).toBe(2);
    expect((await runCli(['explain', '--config', 'no/such.yaml', 'GET', '/'])).status).toBe(1);
  });
});

describe('creditgate explain --account', () => {
  let h: Harness;
  beforeAll(async () => {
    // basic with 10 voice minutes: less than the call's hold of 15.
    h = await startHarness({ config: editConfig(exampleText, ['    voice_minutes: 0\n', '    voice_minutes: 10\n']) });
  });
  afterAll(async () => h.close());
  const env = () => ({ CREDITGATE_ADMIN_TOKEN: ADMIN_TOKEN });

  it('says the request passes now, or which pool refuses it and why', async () => {
    const args = (s: Sample) => [...explainArgs(s), '--account', 'acct-basic', '--admin', h.admin];
    const ok = await runCli(args({ method: 'POST', path: '/v1/ai/custom', headers: { 'x-task-count': '10' } }), env());
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout).now).toMatchObject({ account: 'acct-basic', plan: 'basic', pass: true });

    // basic has no website intel.
    const notInPlan = JSON.parse((await runCli(args(SAMPLES['website-intel']!), env())).stdout).now;
    expect(notInPlan).toMatchObject({ pass: false, reason: 'website_intel not-in-plan (needs 2, 0 left)' });
    // A hold takes what remains, down to its minReserve.
    const held = JSON.parse((await runCli(args(SAMPLES['voice-call']!), env())).stdout).now;
    expect(held).toMatchObject({ pass: true, pools: [{ creditType: 'voice_minutes', required: 15, remaining: 10, heldOnly: 10 }] });

    // Spend 995 of basic's 1000 AI tasks: 10 more would exhaust the pool, 5 would not.
    const spend = await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': 'acct-basic', 'x-task-count': '995' } });
    expect(spend.status).toBe(200);
    const exhausted = JSON.parse((await runCli(args({ method: 'POST', path: '/v1/ai/custom', headers: { 'x-task-count': '10' } }), env())).stdout).now;
    expect(exhausted).toMatchObject({ pass: false, reason: 'ai_tasks exhausted (needs 10, 5 left)' });
    const text = await runCli(
      ['explain', '--config', EXAMPLE, 'POST', '/v1/ai/custom', '--header', 'x-task-count: 10', '--account', 'acct-basic', '--admin', h.admin],
      env(),
    );
    expect(text.stdout).toContain('now     refused (402) for acct-basic: ai_tasks exhausted (needs 10, 5 left)');
    const five = JSON.parse((await runCli(args({ method: 'POST', path: '/v1/ai/custom', headers: { 'x-task-count': '5' } }), env())).stdout).now;
    expect(five.pass).toBe(true);
  });
});
