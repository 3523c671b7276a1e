// The Grafana dashboard against a real Prometheus (Debian's prometheus)
// scraping a running sidecar on loopback: after real traffic, including
// 402s, every dashboard query must evaluate without error and return series.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/redis-server.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const DASHBOARD = 'charts/creditgate/dashboards/creditgate.json';

interface Target {
  expr: string;
  legendFormat: string;
}
interface Panel {
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: Target[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Grafana dashboard on a real Prometheus', () => {
  let h: Harness;
  let prometheus: ChildProcess;
  let promUrl: string;
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    id: unknown;
    uid: string;
    panels: Panel[];
    templating: { list: { name: string; type: string; query: unknown }[] };
  };

  const query = async (expr: string) => {
    const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await r.json()) as { status: string; error?: string; data?: { result: unknown[] } };
  };

  beforeAll(async () => {
    h = await startHarness({ config: TEST_CONFIG, redis: redisUrl(), keyPrefix: uniquePrefix('dash') });
    const dir = mkdtempSync(join(tmpdir(), 'cg-prom-'));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n  - job_name: creditgate\n    static_configs: [{ targets: ["127.0.0.1:${h.sidecar.adminPort}"] }]\n`,
    );
    prometheus = spawn(
      '/usr/bin/prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; ; i++) {
      try {
        const up = await query('up{job="creditgate"} == 1');
        if (up.status === 'success' && (up.data?.result.length ?? 0) > 0) break;
      } catch {
        // Prometheus still starting
      }
      if (i > 300) throw new Error('Prometheus never scraped the sidecar');
      await sleep(100);
    }
  });
  afterAll(async () => {
    prometheus?.kill('SIGTERM');
    await h?.close();
  });

  it('the dashboard is importable as is: classic model, stable uid, a datasource variable every panel uses', () => {
    const text = readFileSync(DASHBOARD, 'utf8');
    expect(dashboard.id).toBeNull();
    expect(dashboard.uid).toBe('creditgate-overview');
    expect(text).not.toContain('__inputs');
    expect(text).not.toContain('${DS_');
    expect(dashboard.templating.list.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    for (const p of panels) {
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
    const titles = panels.map((p) => p.title);
    for (const needed of [
      'Decisions by outcome',
      '402 rate per credit type',
      'Credits charged per credit type and plan',
      'Accounts exhausted per pool',
      'Store latency p50 / p99',
      'Store errors',
      'Upstream latency p50 / p99',
      'Config reloads',
      'Alerts sent',
    ]) {
      expect(titles).toContain(needed);
    }
  });

  it('after traffic with 402s, every dashboard query returns series', async () => {
    const spend = (a: string, n: number) => fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': String(n) } });
    for (let i = 0; i < 5; i++) {
      const a = `dash-${randomUUID()}`;
      expect((await spend(a, 10)).status).toBe(200);
      expect((await spend(a, 1)).status).toBe(402);
      await fetch(`${h.proxy}/v1/voice/calls`, { method: 'POST', headers: { 'x-account-id': a, 'content-type': 'application/json' }, body: '{"minutes": 3}' });
      await h.adminFetch(`/v1/accounts/${a}/topups`, { method: 'POST', body: JSON.stringify({ creditType: 'database', amount: 5 }) });
      await sleep(400);
    }
    // A few scrapes after the last request, so that rate() has two points.
    await sleep(3000);

    const failures: string[] = [];
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      for (const target of panel.targets ?? []) {
        const expr = target.expr.replaceAll('$__rate_interval', '20s').replaceAll('$job', '.*');
        const result = await query(expr);
        if (result.status !== 'success') failures.push(`${panel.title}: ${expr}: ${result.error}`);
        else if ((result.data?.result.length ?? 0) === 0) failures.push(`${panel.title}: ${expr}: no series`);
      }
    }
    expect(failures).toEqual([]);

    const jobs = (await (await fetch(`${promUrl}/api/v1/label/job/values?match[]=creditgate_config_info`)).json()) as { data: string[] };
    expect(jobs.data).toEqual(['creditgate']);
    // The 402s are visible, by credit type.
    const refused = await query('sum by (credit_type) (creditgate_decisions_total{outcome=~"exhausted|not_in_plan"})');
    const byType = Object.fromEntries(
      (refused.data!.result as { metric: { credit_type: string }; value: [number, string] }[]).map((r) => [r.metric.credit_type, Number(r.value[1])]),
    );
    expect(byType.ai_tasks).toBeGreaterThanOrEqual(5);
    expect(byType.voice_minutes).toBeGreaterThanOrEqual(5);
  });

  it('the alert rules pass promtool check and their unit tests', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const p = spawn('/usr/bin/promtool', args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.stderr.on('data', (d: Buffer) => (out += d.toString()));
        p.on('exit', (code) => resolve({ code, out }));
      });
    const check = await run(['check', 'rules', 'charts/creditgate/files/prometheus-rules.yaml']);
    expect(check.out).toContain('SUCCESS: 5 rules found');
    expect(check.code).toBe(0);
    const unit = await run(['test', 'rules', 'charts/creditgate/tests/prometheus-rules.test.yaml']);
    expect(unit.out).toContain('SUCCESS');
    expect(unit.code).toBe(0);
  });
});
