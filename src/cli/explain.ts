// `creditgate explain`: what creditgate would do with one request — which
// route, what it charges, holds or releases, or why it is refused — without
// sending anything or opening a store. It calls the gate's own steps
// (gate-steps.ts, json-body.ts), so its answer is the live path's answer.

import { readFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import type { CompiledConfig } from '../config/compiled-config.js';
import { describeSettle } from '../config/config-summary.js';
import { loadConfigFile } from '../config/index.js';
import type { CostLine } from '../engine/types.js';
import { costsOf, lookupRoute } from '../http/gate-steps.js';
import { readJsonBody } from '../http/json-body.js';
import { adminClient } from './admin-sync.js';
import { usageError } from './cli-errors.js';
import { judgeAgainstUsage, type Verdict } from './explain-verdict.js';

export const EXPLAIN_HELP = `usage: creditgate explain --config FILE METHOD PATH [options]
  a dry run: which route a request matches and what it would cost; sends nothing, needs no store
  --header 'name: value'   a request header (repeatable)
  --query 'a=1&b=2'        added to the path's query
  --body JSON | @FILE      the request body
  --json                   machine-readable output
  --account ID --admin URL also read the account's usage (admin API; token from
                           CREDITGATE_ADMIN_TOKEN) and say whether the request would pass now`;

export type ExplainOutcome = 'charge' | 'release' | 'unmatched-pass' | 'unmatched-reject' | 'invalid-cost' | 'bad-request';

export interface ExplainCharge {
  readonly creditType: string;
  readonly amount: number;
  readonly op?: 'release';
  readonly hold?: true;
  readonly minReserve?: number;
  readonly settle?: string;
}

export interface Explanation {
  readonly route?: { readonly name: string; readonly index: number };
  readonly outcome: ExplainOutcome;
  readonly reason?: string;
  /** The normalised path and query, as the upstream would receive them. */
  readonly forwardUrl?: string;
  readonly charges?: readonly ExplainCharge[];
}

export interface ExplainRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body?: Buffer | undefined;
}

/** The request through the gate's steps up to (not including) identity and the store. */
export async function explainRequest(config: CompiledConfig, req: ExplainRequest): Promise<Explanation> {
  const found = lookupRoute(config, req.method, req.url, req.headers);
  if (found.kind === 'bad-request') return { outcome: 'bad-request', reason: found.problem.detail };
  if (found.kind === 'unmatched') {
    return found.reject
      ? { outcome: 'unmatched-reject', reason: found.problem?.detail ?? 'no route matches', forwardUrl: found.forwardUrl }
      : { outcome: 'unmatched-pass', forwardUrl: found.forwardUrl };
  }
  const route = { name: found.route.name, index: config.routeList.indexOf(found.route) };
  let body: unknown;
  if (found.route.readsBody) {
    const read = await readJsonBody(Readable.from(req.body ? [req.body] : []), req.headers, config.maxBodyBytes, config.maxJsonDepth);
    if (!read.ok) return { route, outcome: 'bad-request', reason: read.problem.detail, forwardUrl: found.forwardUrl };
    body = read.value;
  }
  const costs = costsOf(found.route, { headers: req.headers, query: found.query, body });
  if (!costs.ok) return { route, outcome: 'invalid-cost', reason: costs.problem.detail, forwardUrl: found.forwardUrl };
  return {
    route,
    outcome: costs.costs.some((c) => c.op !== 'release') ? 'charge' : 'release',
    forwardUrl: found.forwardUrl,
    charges: costs.costs.map(explainCharge),
  };
}

function explainCharge(c: CostLine): ExplainCharge {
  return {
    creditType: c.creditType,
    amount: c.amount,
    ...(c.op === 'release' ? { op: 'release' as const } : {}),
    ...(c.hold ? { hold: true as const, minReserve: c.hold.minAmount, settle: describeSettle(c.hold.settle) } : {}),
  };
}

function parseHeaders(list: readonly string[]): IncomingHttpHeaders {
  const headers: Record<string, string> = {};
  for (const h of list) {
    const colon = h.indexOf(':');
    const name = colon > 0 ? h.slice(0, colon).trim().toLowerCase() : '';
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) throw usageError(`--header takes 'name: value', got ${JSON.stringify(h)}`);
    const value = h.slice(colon + 1).trim();
    // Repeated headers reach the gate as Node joins them: one comma-separated value.
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return headers;
}

async function readBodyArg(arg: string | undefined): Promise<Buffer | undefined> {
  if (arg === undefined) return undefined;
  if (!arg.startsWith('@')) return Buffer.from(arg);
  try {
    return await readFile(arg.slice(1));
  } catch (err) {
    throw usageError(`cannot read the --body file ${arg.slice(1)}: ${(err as Error).message}`);
  }
}

function text(e: Explanation, verdict: Verdict | undefined): string {
  const lines: string[] = [];
  if (e.route) lines.push(`route   ${e.route.name} (routes[${e.route.index}], first match)`);
  if (e.outcome === 'unmatched-pass') lines.push(`route   none: passes through uncharged (unmatched: pass)`);
  if (e.outcome === 'unmatched-reject') lines.push(`route   none: refused with 404 (unmatched: reject)`);
  if (e.outcome === 'bad-request' || e.outcome === 'invalid-cost') lines.push(`refuse  ${e.outcome}: ${e.reason}`);
  const charged = (e.charges ?? []).filter((c) => c.op !== 'release');
  const released = (e.charges ?? []).filter((c) => c.op === 'release');
  if (charged.length > 0) {
    lines.push(`charge  ${charged.map((c) => `${c.creditType} ${c.amount}`).join(' · ')}${charged.length > 1 ? '   (all or nothing)' : ''}`);
    for (const c of charged.filter((x) => x.hold)) lines.push(`hold    ${c.creditType} ${c.amount} (down to ${c.minReserve}), ${c.settle}`);
  }
  if (released.length > 0) lines.push(`release ${released.map((c) => `${c.creditType} ${c.amount}`).join(' · ')}`);
  if (verdict) {
    lines.push(
      verdict.pass ? `now     passes for ${verdict.account} (plan ${verdict.plan})` : `now     refused (402) for ${verdict.account}: ${verdict.reason}`,
    );
    for (const p of verdict.pools.filter((x) => x.heldOnly !== undefined))
      lines.push(`        ${p.creditType}: holds ${p.heldOnly} of ${p.required} (what remains)`);
    for (const p of verdict.pools.filter((x) => x.shadow)) lines.push(`        shadow mode: ${p.creditType} would be ${p.refuse}, logged and let through`);
  }
  return lines.join('\n');
}

export async function explainCommand(args: string[], env: NodeJS.ProcessEnv, out: (text: string) => void): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      header: { type: 'string', multiple: true },
      query: { type: 'string' },
      body: { type: 'string' },
      json: { type: 'boolean' },
      account: { type: 'string' },
      admin: { type: 'string' },
      'admin-url': { type: 'string' },
    },
  });
  if (!values.config) throw usageError(`explain needs --config FILE\n${EXPLAIN_HELP}`);
  if (positionals.length !== 2) throw usageError(`explain takes METHOD PATH\n${EXPLAIN_HELP}`);
  const [method, path] = positionals as [string, string];
  if (!path.startsWith('/') && !/^https?:\/\//i.test(path)) throw usageError(`PATH starts with /, got ${JSON.stringify(path)}`);
  const headers = parseHeaders(values.header ?? []);
  const body = await readBodyArg(values.body);
  const query = values.query?.replace(/^\?/, '');
  const url = query ? `${path}${path.includes('?') ? '&' : '?'}${query}` : path;
  const config = await loadConfigFile(values.config);
  const explanation = await explainRequest(config, { method: method.toUpperCase(), url, headers, body });
  let verdict: Verdict | undefined;
  // Only a charged (or releasing) request has pools to compare with the account's usage.
  if (values.account !== undefined && (explanation.outcome === 'charge' || explanation.outcome === 'release')) {
    const usage = await adminClient(values, env).usage(values.account);
    verdict = judgeAgainstUsage(config, explanation, usage, Date.now());
  }
  out(values.json ? JSON.stringify({ ...explanation, ...(verdict ? { now: verdict } : {}) }) : text(explanation, verdict));
}
