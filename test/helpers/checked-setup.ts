// Setup steps that check themselves: a test whose setup silently failed
// (a sidecar that is not serving, an admin call refused, a metrics page not
// served) must fail there, not pass or fail for a reason it does not state.

import { expect } from 'vitest';
import type { Harness } from './sidecar-harness.js';

/** The sidecar serves its admin port (/healthz 200) and reaches its store (/readyz 200). */
export async function expectUp(h: Harness): Promise<void> {
  const health = await fetch(`${h.admin}/healthz`);
  expect(health.status, 'GET /healthz').toBe(200);
  await health.arrayBuffer();
  const ready = await fetch(`${h.admin}/readyz`);
  expect(ready.status, 'GET /readyz').toBe(200);
  expect((await ready.json()).status).toBe('ready');
}

/** An admin API call that must answer `status`; its JSON body. */
export async function adminJson(h: Harness, path: string, init: RequestInit = {}, status = 200) {
  const r = await h.adminFetch(path, init);
  expect(r.status, `${init.method ?? 'GET'} ${path}: ${await r.clone().text()}`).toBe(status);
  return r.json();
}

/** GET /metrics, which must answer 200; the exposition text. */
export async function metricsText(h: Harness): Promise<string> {
  const r = await fetch(`${h.admin}/metrics`);
  const text = await r.text();
  expect(r.status, 'GET /metrics').toBe(200);
  return text;
}
