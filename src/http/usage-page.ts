// The billing tab as HTML: per credit type used / allowance with a bar, the
// reset date, active top-ups and recent alerts. Server-rendered, no script,
// no external assets; readable on a phone.

import type { TopUpInfo } from '../config/compiled-config.js';
import { daysBeforeReset } from '../domain/forecast.js';
import type { TopUpView, UsageView } from '../engine/credit-engine.js';
import type { AlertEvent } from '../store/credit-store.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const n = (v: number) => v.toLocaleString('en-US');

const date = (iso: string) => new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });

const dateTime = (iso: string) =>
  `${new Date(iso).toLocaleString('en-GB', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', timeZone: 'UTC' })} UTC`;

const dayMonth = (iso: string) => new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'long', timeZone: 'UTC' });

/** How more is had: a link to buy it, or a mailto: link to the contact (a URL contact stays a URL). */
function moreLink(topUp: TopUpInfo, label: string): string {
  if ('url' in topUp) return `<a class="more" href="${esc(topUp.url)}">${label}</a>`;
  const href = /^[a-z][a-z0-9+.-]*:/i.test(topUp.contact) ? topUp.contact : `mailto:${topUp.contact}`;
  return `<a class="more" href="${esc(href)}">Contact ${esc(topUp.contact)}</a>`;
}

/** "At this pace, runs out on 3 December — 9 days before it resets", or nothing when it lasts. */
function forecastLine(p: UsageView['pools'][string]): string {
  const at = p.forecast?.exhaustsAt;
  if (!at || !p.resetsAt) return '';
  const days = daysBeforeReset(Date.parse(at), Date.parse(p.resetsAt));
  const before = days >= 1 ? ` — ${days} day${days === 1 ? '' : 's'} before it resets` : '';
  return `\n<p class="forecast">At this pace, runs out on ${dayMonth(at)}${before}</p>`;
}

function level(fraction: number): 'ok' | 'warn' | 'full' {
  return fraction >= 1 ? 'full' : fraction >= 0.8 ? 'warn' : 'ok';
}

function poolCard(id: string, p: UsageView['pools'][string]): string {
  const name = esc(p.name);
  if (p.allowance === null) {
    return `<section class="pool" data-credit-type="${esc(id)}"><h2>${name}</h2>
<p class="figures"><strong>${n(p.used)}</strong> used · unlimited</p>
<p class="note">${p.resetsAt ? `Counter resets on ${date(p.resetsAt)}` : ''}</p></section>`;
  }
  const fraction = p.allowance === 0 ? 1 : Math.min(1, p.used / p.allowance);
  const pct = Math.round(fraction * 100);
  const figures =
    p.kind === 'capacity' ? `<strong>${n(p.used)}</strong> of ${n(p.allowance)} connected` : `<strong>${n(p.used)}</strong> of ${n(p.allowance)} used`;
  const parts: string[] = [];
  if (p.kind === 'capacity') parts.push(`${n(p.remaining ?? 0)} more can be connected`);
  else if (p.planAllowance === 0) {
    // Not in the plan: listed while a top-up of it is active, which is all there is of it.
    parts.push(`${n(p.remaining ?? 0)} left`, 'from top-ups, not included in the plan');
  } else {
    parts.push(`${n(p.remaining ?? 0)} left`);
    if (p.resetsAt) parts.push(`resets on ${date(p.resetsAt)}`);
    if (p.topUpRemaining > 0) parts.push(`includes ${n(p.topUpRemaining)} from top-ups`);
  }
  const more = fraction >= 0.8 && p.topUp ? ` ${'url' in p.topUp ? '' : 'Need more? '}${moreLink(p.topUp, 'Buy more')}` : '';
  return `<section class="pool ${level(fraction)}" data-credit-type="${esc(id)}"><h2>${name}</h2>
<p class="figures">${figures}</p>
<div class="bar" role="progressbar" aria-label="${name}" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pct}"><span style="width:${pct}%"></span></div>${forecastLine(p)}
<p class="note">${parts.join(' · ')}${more}</p></section>`;
}

function notInPlanCard(t: NotInPlan): string {
  return `<section class="pool absent" data-credit-type="${esc(t.id)}"><h2>${esc(t.name)}</h2>
<p class="figures">Not in your plan</p>${t.topUp ? `\n<p class="note">${moreLink(t.topUp, 'Add it')}</p>` : ''}</section>`;
}

export interface NotInPlan {
  readonly id: string;
  readonly name: string;
  readonly topUp: TopUpInfo | null;
}

export interface UsagePageData {
  readonly usage: UsageView;
  /** Credit types the plan lacks, shown as plain cards after the pools. */
  readonly notInPlan?: readonly NotInPlan[];
  readonly topUps: readonly TopUpView[];
  readonly events: readonly AlertEvent[];
  readonly creditTypeNames: ReadonlyMap<string, string>;
}

export function renderUsagePage({ usage, topUps, events, creditTypeNames, notInPlan = [] }: UsagePageData): string {
  const pools = [...Object.entries(usage.pools).map(([id, p]) => poolCard(id, p)), ...notInPlan.map(notInPlanCard)].join('\n');
  const topUpRows = topUps
    .map(
      (t) =>
        `<tr><td>${esc(creditTypeNames.get(t.creditType) ?? t.creditType)}</td><td class="num">${n(t.remaining)} of ${n(t.amount)}</td><td>${date(t.expiresAt)}</td></tr>`,
    )
    .join('');
  const eventItems = events
    .map((e) => {
      const what =
        e.type === 'exhausted'
          ? `All ${esc(e.creditType.name)} used`
          : e.type === 'forecast' && e.exhaustsAt
            ? `${esc(e.creditType.name)} on pace to run out on ${dayMonth(e.exhaustsAt)}`
            : `${Math.round(e.threshold * 100)} % of ${esc(e.creditType.name)} used`;
      return `<li><span>${what}</span><time datetime="${esc(e.createdAt)}">${dateTime(e.createdAt)}</time></li>`;
    })
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Usage · ${esc(usage.account)}</title>
<style>
:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2433; background: #f5f6f8; }
body { margin: 0; padding: 16px; }
main { max-width: 760px; margin: 0 auto; }
header h1 { font-size: 1.4rem; margin: 0 0 4px; overflow-wrap: anywhere; }
header p { margin: 0 0 16px; color: #5b6475; }
.pools { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 320px), 1fr)); gap: 12px; }
.pool { background: #fff; border: 1px solid #e1e4ea; border-radius: 10px; padding: 14px 16px; }
.pool h2 { font-size: 1rem; margin: 0 0 6px; }
.figures { margin: 0 0 8px; font-size: 1.05rem; }
.bar { height: 10px; border-radius: 5px; background: #e8ebf0; overflow: hidden; }
.bar span { display: block; height: 100%; background: #2f7d5b; }
.warn .bar span { background: #c98a14; }
.full .bar span { background: #c23b3b; }
.note { margin: 8px 0 0; color: #5b6475; font-size: .9rem; }
.more { font-weight: 600; color: #1f5fbf; }
.forecast { margin: 8px 0 0; font-size: .9rem; color: #8a5a00; }
.absent { background: #fafbfc; }
.absent .figures { color: #5b6475; }
h3 { margin: 24px 0 8px; font-size: 1.05rem; }
table { width: 100%; border-collapse: separate; border-spacing: 0; overflow: hidden; background: #fff; border: 1px solid #e1e4ea; border-radius: 10px; }
td, th { padding: 8px 12px; text-align: left; border-bottom: 1px solid #eef0f4; font-size: .95rem; }
tr:last-child td { border-bottom: 0; }
.num { text-align: right; white-space: nowrap; }
ul.events { list-style: none; margin: 0; padding: 0; background: #fff; border: 1px solid #e1e4ea; border-radius: 10px; }
ul.events li:last-child { border-bottom: 0; }
ul.events li { display: flex; justify-content: space-between; gap: 12px; padding: 8px 12px; border-bottom: 1px solid #eef0f4; flex-wrap: wrap; }
ul.events time { color: #5b6475; font-size: .9rem; }
.empty { color: #5b6475; margin: 0; }
</style></head>
<body><main>
<header><h1>Usage for ${esc(usage.account)}</h1>
<p>Plan <strong>${esc(usage.plan)}</strong> · billing cycle ${date(usage.cycle.start)} – ${date(usage.cycle.end)}</p></header>
<div class="pools">
${pools || '<p class="empty">This plan includes no credit types.</p>'}
</div>
<h3>Active top-ups</h3>
${topUpRows ? `<table class="topups"><thead><tr><th>Credit type</th><th class="num">Remaining</th><th>Expires</th></tr></thead><tbody>${topUpRows}</tbody></table>` : '<p class="empty">No active top-ups.</p>'}
<h3>Recent alerts</h3>
${eventItems ? `<ul class="events">${eventItems}</ul>` : '<p class="empty">No alerts yet.</p>'}
</main></body></html>`;
}
