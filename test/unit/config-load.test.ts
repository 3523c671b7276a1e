import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, formatIssue } from '../../src/config/config-error.js';
import { loadConfigFile, loadConfigObject, loadConfigText } from '../../src/config/index.js';
import { editConfig, replaceEvery } from '../helpers/edit-config.js';

const ISSUE_SHAPE = `version: 1
identity:
  header: x-account-id
defaultPlan: basic
creditTypes:
  ai_tasks: { name: AI Task Credits }
  email_verification: { name: Email Verification }
  database: { name: Database Credits }
  mailboxes: { name: User Brought Mailboxes, kind: capacity }
plans:
  basic: { ai_tasks: 1000, email_verification: 2000, database: 2000, mailboxes: 1 }
  unlimited: { ai_tasks: unlimited, email_verification: 25000, database: 25000, mailboxes: 20 }
routes:
  - name: generate-followups
    method: POST
    path: /v1/ai/followups
    charge: { ai_tasks: { body: count } }
  - name: verify-emails
    method: POST
    path: /v1/emails/verify
    charge: { email_verification: { bodyLength: emails } }
  - name: enrich-contact
    method: POST
    path: /v1/contacts/:id/enrich
    charge: { database: 1, email_verification: 1 }
  - name: by-header
    method: POST
    path: /v1/ai/custom
    charge: { ai_tasks: { header: x-task-count } }
`;

function errorsOf(text: string, file = 'config.yaml'): string[] {
  try {
    loadConfigText(text, file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues.map(formatIssue);
  }
  throw new Error('expected the config to be refused');
}

describe('config loading', () => {
  it('accepts the shape the issue pins, with defaults filled in', () => {
    const c = loadConfigText(ISSUE_SHAPE, 'config.yaml');
    expect([...c.creditTypes.keys()]).toEqual(['ai_tasks', 'email_verification', 'database', 'mailboxes']);
    expect(c.creditTypes.get('mailboxes')!.kind).toBe('capacity');
    expect(c.creditTypes.get('ai_tasks')!.kind).toBe('consumable');
    expect(c.plans.get('unlimited')!.quotas.get('ai_tasks')).toBeNull();
    expect(c.defaultPlan).toBe('basic');
    expect(c.storeTimeoutMs).toBe(50);
    expect(c.identityHeader).toBe('x-account-id');
    const m = c.routes.match('POST', '/v1/contacts/42/enrich');
    expect(m?.route.name).toBe('enrich-contact');
    expect(m?.route.charges.map((x) => x.creditType)).toEqual(['database', 'email_verification']);
  });

  it('loads the shipped example: all 8 credit types and 3 plans of DESIGN.md', async () => {
    const c = await loadConfigFile('config/credits.example.yaml');
    expect(c.creditTypes.size).toBe(8);
    expect([...c.plans.keys()]).toEqual(['basic', 'scale', 'unlimited']);
    const scale = c.plans.get('scale')!;
    expect(Object.fromEntries(scale.quotas)).toEqual({
      database: 10000,
      email_verification: 10000,
      mailboxes: 5,
      linkedin_sync: 1,
      website_intel: 1000,
      knowledge_pages: 10000,
      voice_minutes: 60,
      ai_tasks: 5000,
    });
    expect(c.plans.get('basic')!.quotas.get('voice_minutes')).toBe(0);
    expect(c.plans.get('unlimited')!.quotas.get('voice_minutes')).toBe(180);
  });

  it('names file, line and field for a bad cost rule', () => {
    const bad = editConfig(ISSUE_SHAPE, ['charge: { ai_tasks: { header: x-task-count } }', 'charge: { ai_tasks: "lots" }']);
    expect(errorsOf(bad)).toEqual(['config.yaml:29 routes[3].charge.ai_tasks: expected a number or a cost rule']);
  });

  it('reports the field inside a cost rule that is wrong, not just "invalid union"', () => {
    const bad = editConfig(ISSUE_SHAPE, ['{ ai_tasks: { body: count } }', '{ ai_tasks: { body: 7 } }']);
    const errors = errorsOf(bad);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^config\.yaml:17 routes\[0\]\.charge\.ai_tasks\.body: .*expected string/);
  });

  it('reports unknown fields, unknown credit types and unknown plans at their lines', () => {
    const bad = editConfig(
      ISSUE_SHAPE,
      ['defaultPlan: basic', 'defaultPlan: gold'],
      ['path: /v1/emails/verify', 'path: /v1/emails/verify\n    cost: 3'],
      ['charge: { database: 1, email_verification: 1 }', 'charge: { database: 1, sms: 1 }'],
    );
    expect(errorsOf(bad)).toEqual([
      'config.yaml:21 routes[1].cost: unknown field',
      'config.yaml:4 defaultPlan: unknown plan "gold" (declared: basic, unlimited)',
      'config.yaml:26 routes[2].charge.sms: unknown credit type "sms" (declared: ai_tasks, email_verification, database, mailboxes)',
    ]);
  });

  it('billing.stripe: unknown plan ids, a bad accountFrom and a bad onCanceled are refused at their lines', () => {
    const billing = `billing:
  stripe:
    webhookSecret: env:STRIPE_WEBHOOK_SECRET
    accountFrom: metadata.account_id
    plans:
      price_basic_monthly: basic
      price_scale_monthly: scale
    onCanceled: { plan: gold }
`;
    const start = ISSUE_SHAPE.split('\n').length;
    expect(errorsOf(ISSUE_SHAPE + billing)).toEqual([
      `config.yaml:${start + 6} billing.stripe.plans.price_scale_monthly: unknown plan "scale" (declared: basic, unlimited)`,
      `config.yaml:${start + 7} billing.stripe.onCanceled.plan: unknown plan "gold" (declared: basic, unlimited)`,
    ]);
    const other = editConfig(ISSUE_SHAPE + billing, ['metadata.account_id', 'email'], ['{ plan: gold }', 'archive']);
    expect(errorsOf(other).map((e) => e.split(':')[1])).toContain(`${start + 3} billing.stripe.accountFrom`);
    const ok = editConfig(ISSUE_SHAPE + billing, ['price_scale_monthly: scale', 'price_unlimited: unlimited'], ['{ plan: gold }', 'delete']);
    expect(loadConfigText(ok, 'config.yaml').stripe).toMatchObject({ accountFrom: 'metadata.account_id', onCanceled: 'delete' });
  });

  it('refuses a cost rule with two inputs, a negative quota, a duplicate route name and a bad path', () => {
    const bad = editConfig(
      ISSUE_SHAPE,
      ['{ body: count }', '{ body: count, header: x-n }'],
      ['database: 2000, mailboxes: 1', 'database: -5, mailboxes: 1'],
      ['name: by-header', 'name: verify-emails'],
      ['path: /v1/contacts/:id/enrich', 'path: /v1/contacts/:/enrich'],
    );
    const errors = errorsOf(bad);
    expect(errors).toContain('config.yaml:17 routes[0].charge.ai_tasks: a cost rule takes one input, got body and header');
    expect(errors.some((e) => e.startsWith('config.yaml:11 plans.basic.database:'))).toBe(true);
    expect(errors).toContain('config.yaml:26 routes[3].name: duplicate route name (also routes[1])');
    expect(errors.some((e) => e.startsWith('config.yaml:24 routes[2].path:'))).toBe(true);
  });

  it('compiles a hold sized from the request and settled from the response body, and refuses ambiguous ones', () => {
    const ok = editConfig(ISSUE_SHAPE, [
      '{ ai_tasks: { body: count } }',
      '{ ai_tasks: { reserve: { body: max_tokens, default: 4096, max: 200000 }, settle: { responseJson: [message.usage.input_tokens, usage.output_tokens], onIncomplete: release } } }',
    ]);
    const rule = loadConfigText(ok, 'config.yaml').routes.match('POST', '/v1/ai/followups')!.route.charges[0]!.rule;
    expect(rule).toMatchObject({ source: { from: 'body', field: 'max_tokens' }, default: 4096, min: 1, max: 200000, minReserve: 1 });
    expect(rule.settle).toEqual({ responseJson: ['message.usage.input_tokens', 'usage.output_tokens'], divideBy: 1, round: 'up', onIncomplete: 'release' });
    const bad = editConfig(ISSUE_SHAPE, [
      '{ ai_tasks: { body: count } }',
      '{ ai_tasks: { reserve: { body: max_tokens, header: x-max }, max: 5, settle: { responseJson: usage.total_tokens, responseTrailer: x-usage } } }',
    ]);
    const errors = errorsOf(bad);
    expect(errors).toContain('config.yaml:17 routes[0].charge.ai_tasks.reserve: a reserve rule takes one input, got body and header');
    expect(errors).toContain('config.yaml:17 routes[0].charge.ai_tasks.reserve: a reserve rule carries its own default, min and max: move them into reserve');
    expect(errors).toContain(
      'config.yaml:17 routes[0].charge.ai_tasks.settle: settle takes one of responseHeader, responseJson, responseTrailer, got responseJson and responseTrailer',
    );
  });

  it('refuses any amount above MAX_CREDITS (10^12) at its line: quotas, fixed costs, reserves, rule bounds, maxCost', () => {
    const over = '1000000000001';
    const bad = editConfig(
      ISSUE_SHAPE,
      ['ai_tasks: 1000, email_verification: 2000', `ai_tasks: ${over}, email_verification: 2000`],
      ['identity:\n', `limits: { maxCost: ${over} }\nidentity:\n`],
      ['ai_tasks: { name: AI Task Credits }', `ai_tasks: { name: AI Task Credits, onStoreError: { allow: ${over} } }`],
      ['{ ai_tasks: { body: count } }', `{ ai_tasks: { body: count, max: ${over} } }`],
      [
        'charge: { email_verification: { bodyLength: emails } }',
        `maxCost: ${over}\n    charge: { email_verification: { bodyLength: emails, default: ${over} } }`,
      ],
      [
        'charge: { database: 1, email_verification: 1 }',
        `charge: { database: ${over}, email_verification: { reserve: ${over}, settle: { responseHeader: x-used } } }`,
      ],
    );
    const at = 'at most 1,000,000,000,000 credits (the largest amount creditgate keeps exact)';
    expect(errorsOf(bad).sort()).toEqual(
      [
        `config.yaml:2 limits.maxCost: ${at}`,
        `config.yaml:7 creditTypes.ai_tasks.onStoreError.allow: ${at}`,
        `config.yaml:12 plans.basic.ai_tasks: ${at}`,
        `config.yaml:18 routes[0].charge.ai_tasks.max: ${at}`,
        `config.yaml:22 routes[1].maxCost: ${at}`,
        `config.yaml:23 routes[1].charge.email_verification.default: ${at}`,
        `config.yaml:27 routes[2].charge.database: ${at}`,
        `config.yaml:27 routes[2].charge.email_verification.reserve: ${at}`,
      ].sort(),
    );
    // The maximum itself is fine everywhere.
    const max = replaceEvery(bad, over, '1000000000000', 8);
    const c = loadConfigText(max, 'config.yaml');
    expect(c.plans.get('basic')!.quotas.get('ai_tasks')).toBe(1_000_000_000_000);
    expect(c.routes.match('POST', '/v1/ai/followups')!.route.charges[0]!.rule.max).toBe(1_000_000_000_000);
  });

  it('reports YAML syntax errors and duplicate keys with their line', () => {
    expect(errorsOf('version: 1\ncreditTypes:\n  a: { name: A\n')[0]).toMatch(/^config\.yaml:\d+: /);
    const dup = errorsOf('version: 1\nversion: 1\ncreditTypes: {}\nplans: {}\n');
    expect(dup[0]).toMatch(/^config\.yaml:2: .*[Uu]nique/);
  });

  it('refuses a YAML alias bomb quickly instead of expanding it', () => {
    const bomb = [
      'a: &a ["x","x","x","x","x","x","x","x","x"]',
      'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
      'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
      'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
      'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
      'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
      'g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]',
    ].join('\n');
    expect(errorsOf(bomb)[0]).toMatch(/YAML cannot be expanded/);
  });

  it('names the file when it cannot be read', async () => {
    await expect(loadConfigFile('/nonexistent/creditgate.yaml')).rejects.toThrow(/\/nonexistent\/creditgate\.yaml: cannot read config: file not found/);
  });

  it('validates a config passed as an object, naming fields', () => {
    expect(() => loadConfigObject({ version: 2, creditTypes: {}, plans: {} })).toThrow(/<object> version: expected version: 1/);
  });

  it('a plan that omits a credit type does not include it', () => {
    const c = loadConfigText(editConfig(ISSUE_SHAPE, ['basic: { ai_tasks: 1000, ', 'basic: { ']));
    expect(c.plans.get('basic')!.quotas.has('ai_tasks')).toBe(false);
  });

  it('reads a file from disk with its own name in errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cg-config-'));
    const file = join(dir, 'credits.yaml');
    writeFileSync(file, editConfig(ISSUE_SHAPE, ['version: 1', 'version: one']));
    await expect(loadConfigFile(file)).rejects.toThrow(`${file}:1 version: expected version: 1`);
  });

  it('release routes: capacity types only, never both charged and released; topUp and alerts are checked', () => {
    const withRelease = editConfig(ISSUE_SHAPE, [
      'routes:\n',
      'routes:\n  - name: disconnect\n    method: DELETE\n    path: /v1/mailboxes/:id\n    release: { mailboxes: 1 }\n',
    ]);
    const ok = loadConfigText(withRelease, 'config.yaml');
    const route = ok.routes.match('DELETE', '/v1/mailboxes/7')!.route;
    expect(route.charges).toEqual([{ creditType: 'mailboxes', op: 'release', rule: { source: { from: 'fixed', amount: 1 }, min: 1, max: 1 } }]);

    expect(errorsOf(editConfig(withRelease, ['release: { mailboxes: 1 }', 'release: { ai_tasks: 1 }']))).toEqual([
      'config.yaml:17 routes[0].release.ai_tasks: only capacity credit types can be released',
    ]);
    // Shape errors are reported first; cross-field checks run once the shape is right.
    const bad = editConfig(
      withRelease,
      ['ai_tasks: { name: AI Task Credits }', 'ai_tasks: { name: AI Task Credits, topUp: { phone: "555" } }'],
      ['defaultPlan: basic', 'defaultPlan: basic\nalerts: { thresholds: [0.8, 1.5] }'],
    );
    const errors = errorsOf(bad);
    expect(errors.some((e) => /^config\.yaml:7 creditTypes\.ai_tasks\.topUp/.test(e))).toBe(true);
    expect(errors.some((e) => /^config\.yaml:5 alerts\.thresholds\[1\]: /.test(e))).toBe(true);
  });

  it('a route must charge or release something', () => {
    const bad = editConfig(ISSUE_SHAPE, ['charge: { ai_tasks: { header: x-task-count } }', 'charge: {}']);
    expect(errorsOf(bad)).toEqual(['config.yaml:29 routes[3].charge: charge (or release) at least one credit type']);
  });
});
