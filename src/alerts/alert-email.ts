// The alert e-mail: short, plain text and HTML, saying what happened, when
// the pool resets and how to get more.

import type { AlertEvent } from '../store/credit-store.js';

export interface EmailContent {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function formatResetDate(iso: string): string {
  return new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'long', timeZone: 'UTC' });
}

export function alertEmail(event: AlertEvent, subjectTemplate?: string): EmailContent {
  const percent = Math.round(event.threshold * 100);
  const name = event.creditType.name;
  const reset = formatResetDate(event.resetsAt);
  const headline =
    event.type === 'exhausted'
      ? `You have used all of your ${name}.`
      : event.type === 'forecast' && event.exhaustsAt
        ? `At this pace, your ${name} run out on ${formatResetDate(event.exhaustsAt)} (${percent} % used so far).`
        : `You have used ${percent} % of your ${name}.`;
  const pause = event.type === 'exhausted' ? ` Requests that need them are paused until then.` : '';
  const url = event.topUp?.url;
  const contact = event.topUp?.contact;
  const more = url ? ` Need more now? Buy a top-up: ${url}` : contact ? ` Need more now? Contact ${contact}.` : '';
  const sentence = `${headline} They reset on ${reset}.${pause}${more}`;
  const subject = (subjectTemplate ?? '{creditType}: {percent} % used')
    .replaceAll('{creditType}', name)
    .replaceAll('{percent}', String(percent))
    .replaceAll('{account}', event.account);
  const usage = `${event.used.toLocaleString('en-US')} of ${event.allowance.toLocaleString('en-US')} used (account ${event.account}).`;
  const link = url ? `<p><a href="${escapeHtml(url)}">Buy a top-up</a></p>` : contact ? `<p>Need more now? Contact ${escapeHtml(contact)}.</p>` : '';
  return {
    subject,
    text: `${sentence}\n\n${usage}\n`,
    html:
      `<!doctype html><html><body style="font-family:system-ui,sans-serif">` +
      `<p><strong>${escapeHtml(headline)}</strong> They reset on ${escapeHtml(reset)}.${escapeHtml(pause)}</p>` +
      `<p>${escapeHtml(usage)}</p>${link}</body></html>`,
  };
}
