// The human summary `creditgate check-config` prints: credit types, the plan
// matrix and the route table, as a platform team reviews them.

import { describeCostSource } from '../domain/cost-rules.js';
import { textTable } from '../text-table.js';
import type { CompiledConfig, RouteDef } from './compiled-config.js';

const table = (rows: string[][]) => textTable(rows);

function methods(route: RouteDef): string {
  return route.methods === '*' ? '*' : route.methods.join(',');
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
          const q = p.quotas.get(t.id) ?? 0;
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
          r.charges.map((c) => `${c.op === 'release' ? 'release ' : ''}${c.creditType} = ${describeCostSource(c.rule.source)}`).join('; '),
        ]),
      ]),
    );
  }
  return out.join('\n');
}
