// The billing-tab page in a real headless Chromium (Debian's chromium,
// driven by playwright-core), at phone and desktop sizes, with a screenshot.

import { mkdirSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editConfig } from '../helpers/edit-config.js';
import { ADMIN_TOKEN, startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const CHROMIUM = '/usr/bin/chromium';
const DAY = 86_400_000;

describe('usage page in Chromium', () => {
  let h: Harness;
  let browser: Browser;
  const account = `acme-${randomUUID().slice(0, 6)}`;
  const paced = `paced-${randomUUID().slice(0, 6)}`;

  beforeAll(async () => {
    const config = editConfig(
      TEST_CONFIG,
      ['store: { timeoutMs: 2000 }', 'store: { timeoutMs: 2000 }\nalerts: { thresholds: [0.5, 0.8, 1.0] }'],
      ['voice_minutes: { name: AI Voice Agent Minutes }', 'voice_minutes: { name: AI Voice Agent Minutes, topUp: { contact: sales@example.com } }'],
    );
    h = await startHarness({ config, redis: redisUrl(), keyPrefix: uniquePrefix('ui') });
    await h.adminFetch(`/v1/accounts/${account}`, { method: 'PUT', body: JSON.stringify({ plan: 'tiny', billingAnchor: '2025-01-31T09:00:00Z' }) });
    await h.adminFetch(`/v1/accounts/${account}/topups`, { method: 'POST', body: JSON.stringify({ creditType: 'database', amount: 20 }) });
    // ai_tasks 9 of 10 (90 %), database 4 + 1 (plan) of 25, one mailbox of 1.
    await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': account, 'x-task-count': '9' } });
    await fetch(`${h.proxy}/v1/contacts/1/enrich`, { method: 'POST', headers: { 'x-account-id': account } });
    await fetch(`${h.proxy}/v1/mailboxes`, { method: 'POST', headers: { 'x-account-id': account } });
    // Anchored 10 days ago (whole seconds) with half of ai_tasks used: runs out 10 days from now.
    const anchor = new Date(Math.floor((Date.now() - 10 * DAY) / 1000) * 1000).toISOString();
    await h.adminFetch(`/v1/accounts/${paced}`, { method: 'PUT', body: JSON.stringify({ plan: 'tiny', billingAnchor: anchor }) });
    await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': paced, 'x-task-count': '5' } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await h.close();
  });

  it('shows each pool with its bar, reset date, top-ups and alerts; fits a phone screen', async () => {
    const context = await browser.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      extraHTTPHeaders: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    const page = await context.newPage();
    const response = await page.goto(`${h.admin}/ui/accounts/${account}`);
    expect(response?.status()).toBe(200);
    expect(await page.title()).toBe(`Usage · ${account}`);

    const card = (type: string) => page.locator(`section.pool[data-credit-type="${type}"]`);
    expect(await card('ai_tasks').locator('.figures').innerText()).toBe('9 of 10 used');
    expect(await card('ai_tasks').getAttribute('class')).toContain('warn');
    expect(await card('ai_tasks').locator('[role=progressbar]').getAttribute('aria-valuenow')).toBe('90');
    const bar = await card('ai_tasks').locator('.bar span').boundingBox();
    const track = await card('ai_tasks').locator('.bar').boundingBox();
    expect(bar!.width / track!.width).toBeCloseTo(0.9, 1);
    const note = await card('ai_tasks').locator('.note').innerText();
    expect(note).toMatch(/^1 left · resets on \d{1,2} \w+ \d{4} Buy more$/);
    expect(await card('ai_tasks').locator('a.more').getAttribute('href')).toBe('https://billing.example.com/add-ons');

    expect(await card('database').locator('.figures').innerText()).toBe('1 of 25 used');
    expect(await card('database').locator('.note').innerText()).toContain('includes 20 from top-ups');
    expect(await card('mailboxes').locator('.figures').innerText()).toBe('1 of 1 connected');
    expect(await card('mailboxes').getAttribute('class')).toContain('full');

    expect(await page.locator('table.topups tbody tr').count()).toBe(1);
    expect(await page.locator('table.topups tbody tr td').first().innerText()).toBe('Database Credits');
    const alerts = await page.locator('ul.events li span').allInnerTexts();
    expect(alerts).toEqual(['80 % of AI Task Credits used', '50 % of AI Task Credits used']);

    // Runs in the page: no horizontal scrolling at phone width.
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/usage-page-phone.png', fullPage: true });
    await page.setViewportSize({ width: 1200, height: 900 });
    await page.screenshot({ path: 'test-results/usage-page-desktop.png', fullPage: true });
    await context.close();
  });

  it('shows when a pool runs out at the pace of the cycle, and a plain card for what the plan lacks', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, extraHTTPHeaders: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const page = await context.newPage();
    expect((await page.goto(`${h.admin}/ui/accounts/${paced}`))?.status()).toBe(200);
    const usage = await (await h.adminFetch(`/v1/accounts/${paced}/usage`)).json();
    const at = new Date(usage.pools.ai_tasks.forecast.exhaustsAt);
    expect(Math.abs(at.getTime() - (Date.now() + 10 * DAY))).toBeLessThan(60_000);
    const days = Math.floor((Date.parse(usage.pools.ai_tasks.resetsAt) - at.getTime()) / DAY);
    const month = at.toLocaleDateString('en-GB', { month: 'long', timeZone: 'UTC' });
    const card = (type: string) => page.locator(`section.pool[data-credit-type="${type}"]`);
    expect(await card('ai_tasks').locator('.forecast').innerText()).toBe(
      `At this pace, runs out on ${at.getUTCDate()} ${month} — ${days} days before it resets`,
    );
    // Unused pools last: no forecast line.
    expect(await card('database').locator('.forecast').count()).toBe(0);
    // voice_minutes is not in the tiny plan: a plain card with a mailto: link to the contact.
    expect(await card('voice_minutes').locator('.figures').innerText()).toBe('Not in your plan');
    expect(await card('voice_minutes').locator('.bar').count()).toBe(0);
    expect(await card('voice_minutes').locator('a.more').getAttribute('href')).toBe('mailto:sales@example.com');
    await page.screenshot({ path: 'test-results/usage-page-forecast.png', fullPage: true });
    await context.close();
  });

  it('needs the admin token and escapes what it shows', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const denied = await page.goto(`${h.admin}/ui/accounts/${account}`);
    expect(denied?.status()).toBe(401);
    await context.close();

    const hostile = '<script>alert(1)</script>';
    const r = await h.adminFetch(`/ui/accounts/${encodeURIComponent(hostile)}`);
    expect(r.status).toBe(200);
    const html = await r.text();
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(r.headers.get('content-security-policy')).toBe("default-src 'none'; style-src 'unsafe-inline'");
  });
});
