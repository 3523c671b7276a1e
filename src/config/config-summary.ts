// The human summary `creditgate check-config` prints: credit types, the plan
// matrix and the route table, as a platform team reviews them.

import { type CostRule, describeCostSource } from '../domain/cost-rules.js';
import type { SettleRule } from '../domain/settle-rule.js';
import { textTable } from '../text-table.js';
import { quotaOf, type CompiledConfig, type RouteDef } from './compiled-config.js';

const table = (rows: string[][]) => textTable(rows);

function methods(route: RouteDef): string {
  return route.methods === '*' ? '*' : route.methods.join(',');
}

export function describeSettle(settle: SettleRule): string {
  const from =
    settle.responseHeader !== undefined
      ? `header ${settle.responseHeader}`
      : settle.responseTrailer !== undefined
        ? `trailer ${settle.responseTrailer}`
        : `JSON ${settle.responseJson!.join(' + ')}`;
  const scale = settle.divideBy === 1 ? '' : ` / ${settle.divideBy} rounded ${settle.round}`;
  // A header is read with the status; only a body or trailer can be cut short.
  const incomplete = settle.responseHeader === undefined ? `, onIncomplete ${settle.onIncomplete}` : '';
  return `settle from ${from}${scale}${incomplete}`;
}

/** A charge as the route table shows it: a plain amount or input, or a hold and how it settles. */
export function describeCharge(rule: CostRule): string {
  if (!rule.settle) return describeCostSource(rule.source);
  // What a hold may come to matters for review: its default and its largest size.
  const bounds = rule.source.from === 'fixed' ? [] : [...(rule.default === undefined ? [] : [`default ${rule.default}`]), `max ${rule.max}`];
  const input = `${describeCostSource(rule.source)}${bounds.length > 0 ? ` (${bounds.join(', ')})` : ''}`;
  return `hold ${input}, ${describeSettle(rule.settle)}`;
}

export function summarizeConfig(config: CompiledConfig): string {
  const routeDefs = config.routeList;
  const types = [...config.creditTypes.values()];
  const plans = [...config.plans.values()];
  const out: string[] = [];
  out.push(`credit types (${types.length}):`);
  out.push(table([['  id', 'name', 'kind'], ...types.map((t) => [`  ${t.id}`, t.name, t.kind])]));
  out.push('');
  out.push(
    `plans (${plans.length})${config.defaultPlan ? `, default for accounts with no record: ${config.defaultPlan}` : ', no default plan (unknown accounts get 403)'}:`,
  );
  out.push(
    table([
      ['  credit type', ...plans.map((p) => p.id)],
      ...types.map((t) => [
        `  ${t.id}`,
        ...plans.map((p) => {
          const q = quotaOf(p, t.id);
          return q === null ? 'unlimited' : q === 0 ? '-' : String(q);
        }),
      ]),
    ]),
  );
  out.push('');
  out.push(`routes (${routeDefs.length}, first match wins; unmatched requests: ${config.unmatched === 'pass' ? 'pass through uncharged' : '404'}):`);
  if (routeDefs.length > 0) {
    out.push(
      table([
        ['  name', 'method', 'path', 'charge'],
        ...routeDefs.map((r) => [
          `  ${r.name}`,
          methods(r),
          r.path,
          r.charges.map((c) => `${c.op === 'release' ? 'release ' : ''}${c.creditType} = ${describeCharge(c.rule)}`).join('; '),
        ]),
      ]),
    );
  }
  return out.join('\n');
}
