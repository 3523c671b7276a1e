// `creditgate accounts|usage|topup|topups|events`: the admin API from a shell.

import { parseArgs } from 'node:util';
import { textTable } from '../text-table.js';
import { AdminClient } from './admin-client.js';
import { usageError } from './cli-errors.js';

const common = {
  'admin-url': { type: 'string' },
  json: { type: 'boolean' },
} as const;

function client(values: { 'admin-url'?: string | undefined }, env: NodeJS.ProcessEnv): AdminClient {
  return new AdminClient(values['admin-url'] ?? env.CREDITGATE_ADMIN_URL ?? 'http://127.0.0.1:9090', env.CREDITGATE_ADMIN_TOKEN);
}

function one(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw usageError(`expected exactly one ${what}`);
  return positionals[0]!;
}

const num = (n: number | null) => (n === null ? 'unlimited' : n.toLocaleString('en-US'));
const day = (iso: string | null) => (iso === null ? '-' : iso.replace('.000Z', 'Z'));

type Out = (text: string) => void;

export async function accountsCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<void> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { ...common, plan: { type: 'string' }, anchor: { type: 'string' }, email: { type: 'string' } },
  });
  const admin = client(values, env);
  switch (sub) {
    case 'set': {
      const id = one(positionals, 'account id');
      if (!values.plan) throw usageError('accounts set needs --plan');
      const saved = await admin.putAccount(id, {
        plan: values.plan,
        ...(values.anchor ? { billingAnchor: values.anchor } : {}),
        ...(values.email ? { email: values.email } : {}),
      });
      out(
        values.json
          ? JSON.stringify(saved)
          : `account ${saved.id}: plan ${saved.plan}, billing anchor ${saved.billingAnchor}${saved.email ? `, e-mail ${saved.email}` : ''}`,
      );
      return;
    }
    case 'get': {
      const a = await admin.getAccount(one(positionals, 'account id'));
      out(
        values.json
          ? JSON.stringify(a)
          : textTable([
              ['account', a.id],
              ['plan', a.plan],
              ['billing anchor', a.billingAnchor],
              ['e-mail', a.email ?? '-'],
              ['created', a.createdAt],
              ['updated', a.updatedAt],
            ]),
      );
      return;
    }
    case 'delete': {
      const id = one(positionals, 'account id');
      await admin.deleteAccount(id);
      out(values.json ? JSON.stringify({ deleted: id }) : `account ${id} deleted with its counters, top-ups and events`);
      return;
    }
    default:
      throw usageError('usage: creditgate accounts set|get|delete ID …');
  }
}

export async function usageCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: common });
  const u = await client(values, env).usage(one(positionals, 'account id'));
  if (values.json) {
    out(JSON.stringify(u));
    return;
  }
  // The forecast: the cycle's pace, and when the pool runs out at it ("-": it lasts, or no pace yet).
  const pace = (r: number | null | undefined) => (r === null || r === undefined ? '-' : r.toLocaleString('en-US', { maximumFractionDigits: 2 }));
  const rows = Object.entries(u.pools).map(([type, p]) => [
    type,
    num(p.used),
    num(p.allowance),
    num(p.remaining),
    day(p.resetsAt),
    pace(p.forecast?.ratePerDay),
    day(p.forecast?.exhaustsAt ?? null),
  ]);
  out(
    `account ${u.account}, plan ${u.plan}${u.known ? '' : ' (no record: default plan)'}, cycle ${day(u.cycle.start)} → ${day(u.cycle.end)}\n` +
      textTable([['credit type', 'used', 'allowance', 'remaining', 'resets', 'per day', 'runs out'], ...rows], { alignRight: [1, 2, 3, 5] }),
  );
}

export async function topUpCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...common, type: { type: 'string' }, amount: { type: 'string' }, expires: { type: 'string' }, 'idempotency-key': { type: 'string' } },
  });
  const id = one(positionals, 'account id');
  if (!values.type) throw usageError('topup needs --type CREDIT_TYPE');
  const amount = Number(values.amount);
  if (values.amount === undefined || !/^\d+$/.test(values.amount)) throw usageError('topup needs --amount N (a whole number)');
  const g = await client(values, env).topUp(
    id,
    { creditType: values.type, amount, ...(values.expires ? { expiresAt: values.expires } : {}) },
    values['idempotency-key'],
  );
  out(values.json ? JSON.stringify(g) : `top-up ${g.id}: ${num(g.amount)} ${g.creditType} for ${id}, expires ${day(g.expiresAt)}`);
}

export async function topUpsCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: common });
  const list = await client(values, env).topUps(one(positionals, 'account id'));
  if (values.json) out(JSON.stringify(list));
  else if (list.length === 0) out('no active top-ups');
  else
    out(
      textTable(
        [['id', 'credit type', 'amount', 'remaining', 'expires'], ...list.map((g) => [g.id, g.creditType, num(g.amount), num(g.remaining), day(g.expiresAt)])],
        { alignRight: [2, 3] },
      ),
    );
}

export async function eventsCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...common, limit: { type: 'string' } } });
  const events = await client(values, env).events(one(positionals, 'account id'), Number(values.limit ?? 20));
  if (values.json) out(JSON.stringify(events));
  else if (events.length === 0) out('no events');
  else
    out(
      textTable(
        [
          ['when', 'event', 'credit type', 'used', 'allowance'],
          ...events.map((e) => [day(e.createdAt), e.type, e.creditType.id, num(e.used), num(e.allowance)]),
        ],
        { alignRight: [3, 4] },
      ),
    );
}
