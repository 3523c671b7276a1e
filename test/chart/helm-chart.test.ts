// The Helm chart, rendered by a real helm: lint, default render, production
// values with the Prometheus Operator API present and absent, the values
// schema, and the sidecar example manifest. The store (bundled or external
// Redis, memory) is in chart-store.test.ts, the Kubernetes schemas in
// chart-schemas.test.ts.

import { readFileSync, readdirSync } from 'node:fs';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/index.js';
import { CHART, byKind, parseManifests, render } from '../helpers/chart.js';
import { helm } from '../helpers/helm.js';

/** Helm's coalescing of a values file over the chart's values.yaml: maps merge, everything else replaces. */
function coalesce(base: unknown, over: unknown): unknown {
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isMap(base) || !isMap(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? coalesce(base[k], v) : v;
  return out;
}

describe('Helm chart', () => {
  it('passes helm lint --strict, with default and example values', async () => {
    for (const extra of [
      [],
      ['-f', `${CHART}/examples/values-production.yaml`],
      ['-f', `${CHART}/examples/values-single-replica.yaml`],
      ['--set', 'redis.url=redis://redis.example:6379'],
      ['--set', 'redis.auth.existingSecret=shop-redis'],
    ]) {
      const r = await helm(['lint', '--strict', CHART, ...extra]);
      expect(r.stdout + r.stderr, extra.join(' ')).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(r.code).toBe(0);
    }
  });

  it('renders a hardened Deployment with probes, a directory-mounted config and the standard labels', async () => {
    const docs = await render();
    // Defaults include the bundled Redis: its StatefulSet, Service and password Secret.
    expect(docs.map((d) => d.kind).sort()).toEqual([
      'ConfigMap',
      'Deployment',
      'PodDisruptionBudget',
      'Secret',
      'Service',
      'Service',
      'ServiceAccount',
      'StatefulSet',
    ]);
    const deploy = byKind(docs, 'Deployment')[0]!;
    expect(deploy.metadata.labels).toMatchObject({
      'app.kubernetes.io/name': 'creditgate',
      'app.kubernetes.io/instance': 'cg',
      'app.kubernetes.io/version': '0.1.0',
      'app.kubernetes.io/managed-by': 'Helm',
      'app.kubernetes.io/component': 'credit-gate',
    });
    const pod = deploy.spec.template.spec;
    const c = pod.containers[0];
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(c.resources.requests).toEqual({ cpu: '100m', memory: '128Mi' });
    expect(c.volumeMounts).toEqual([{ name: 'creditgate-config', mountPath: '/etc/creditgate', readOnly: true }]);
    expect(pod.volumes[0].configMap.name).toBe('cg-creditgate-config');
    expect(Object.fromEntries(c.env.map((e: { name: string; value?: string }) => [e.name, e.value]))).toMatchObject({
      CREDITGATE_CONFIG: '/etc/creditgate/credits.yaml',
      PORT: '8080',
      ADMIN_PORT: '9090',
      CREDITGATE_SHUTDOWN_GRACE_MS: '10000',
    });
    expect(pod.terminationGracePeriodSeconds).toBe(15);
    // Hot reload is the default: no checksum annotation restarting pods on every edit.
    expect(deploy.spec.template.metadata.annotations ?? {}).not.toHaveProperty('checksum/config');
    const svc = byKind(docs, 'Service').find((d) => d.metadata.name === 'cg-creditgate')!;
    expect(svc.spec.ports).toEqual([
      { name: 'http', port: 80, targetPort: 'proxy', protocol: 'TCP' },
      { name: 'admin', port: 9090, targetPort: 'admin', protocol: 'TCP' },
    ]);
    // The config the chart ships is a valid creditgate config.
    const cm = byKind(docs, 'ConfigMap')[0]!;
    expect(() => loadConfigText(cm.data!['credits.yaml']!, 'values.yaml config')).not.toThrow();
  });

  it('production values with the Prometheus Operator: ServiceMonitor, PrometheusRule, dashboard, HPA, secrets by reference', async () => {
    const docs = await render(['-f', `${CHART}/examples/values-production.yaml`, '--api-versions', 'monitoring.coreos.com/v1']);
    const kinds = docs.map((d) => d.kind).sort();
    expect(kinds).toEqual([
      'ConfigMap',
      'Deployment',
      'HorizontalPodAutoscaler',
      'PodDisruptionBudget',
      'PrometheusRule',
      'Service',
      'ServiceAccount',
      'ServiceMonitor',
    ]);
    const sm = byKind(docs, 'ServiceMonitor')[0]!;
    expect(sm.metadata.labels).toMatchObject({ release: 'kube-prometheus-stack' });
    expect(sm.spec.endpoints).toEqual([{ port: 'admin', path: '/metrics', interval: '15s', scrapeTimeout: '5s' }]);
    const rule = byKind(docs, 'PrometheusRule')[0]!;
    expect(rule.spec).toEqual(parse(readFileSync(`${CHART}/files/prometheus-rules.yaml`, 'utf8')));
    const dash = byKind(docs, 'ConfigMap').find((d) => d.metadata.name.endsWith('-dashboard'))!;
    expect(dash.metadata.labels).toMatchObject({ grafana_dashboard: '1' });
    expect(dash.metadata.namespace).toBe('monitoring');
    expect(JSON.parse(dash.data!['creditgate.json']!)).toEqual(JSON.parse(readFileSync(`${CHART}/dashboards/creditgate.json`, 'utf8')));
    const deploy = byKind(docs, 'Deployment')[0]!;
    expect(deploy.spec.replicas).toBeUndefined();
    const env = deploy.spec.template.spec.containers[0].env as { name: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[];
    expect(env.find((e) => e.name === 'REDIS_URL')!.valueFrom!.secretKeyRef).toEqual({ name: 'creditgate-redis', key: 'url' });
    expect(env.find((e) => e.name === 'CREDITGATE_ADMIN_TOKEN')!.valueFrom!.secretKeyRef).toEqual({ name: 'creditgate-admin', key: 'token' });
    expect(env.find((e) => e.name === 'CREDITGATE_WEBHOOK_SECRET')!.valueFrom!.secretKeyRef).toEqual({ name: 'creditgate-webhook', key: 'secret' });
    // An existing ConfigMap is used, not created.
    expect(deploy.spec.template.spec.volumes[0].configMap.name).toBe('creditgate-credits');
  });

  it('skips ServiceMonitor and PrometheusRule when the monitoring API is absent', async () => {
    const docs = await render(['-f', `${CHART}/examples/values-production.yaml`]);
    expect(byKind(docs, 'ServiceMonitor')).toEqual([]);
    expect(byKind(docs, 'PrometheusRule')).toEqual([]);
  });

  it('inline secrets become a Secret; rollOnConfigChange adds the checksum annotation', async () => {
    const docs = await render(['--set', 'redis.url=redis://redis:6379', '--set', 'adminToken.value=s3cret', '--set', 'rollOnConfigChange=true']);
    // redis.url points at an external Redis: no bundled one, so the chart's own Secret is the only one.
    const secret = byKind(docs, 'Secret')[0]!;
    expect(byKind(docs, 'Secret')).toHaveLength(1);
    expect(Buffer.from(secret.data!['redis-url']!, 'base64').toString()).toBe('redis://redis:6379');
    expect(Buffer.from(secret.data!['admin-token']!, 'base64').toString()).toBe('s3cret');
    expect(byKind(docs, 'Deployment')[0]!.spec.template.metadata.annotations['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('Stripe secrets: inline values go into the Secret, existing ones by reference, both as STRIPE_* env vars', async () => {
    const docs = await render([
      '--set',
      'redis.url=redis://redis:6379',
      '--set',
      'stripeWebhookSecret.value=whsec_abc',
      '--set',
      'stripeApiKey.existingSecret=shop-stripe',
    ]);
    const secret = byKind(docs, 'Secret')[0]!;
    expect(Buffer.from(secret.data!['stripe-webhook-secret']!, 'base64').toString()).toBe('whsec_abc');
    expect(secret.data!['stripe-api-key']).toBeUndefined();
    const env = byKind(docs, 'Deployment')[0]!.spec.template.spec.containers[0].env as {
      name: string;
      valueFrom?: { secretKeyRef: { name: string; key: string } };
    }[];
    expect(env.find((e) => e.name === 'STRIPE_WEBHOOK_SECRET')?.valueFrom?.secretKeyRef).toEqual({ name: secret.metadata.name, key: 'stripe-webhook-secret' });
    expect(env.find((e) => e.name === 'STRIPE_API_KEY')?.valueFrom?.secretKeyRef).toEqual({ name: 'shop-stripe', key: 'stripe-api-key' });
  });

  it('values.schema.json accepts values.yaml and the examples, and refuses bad values (helm too)', async () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    const validate = ajv.compile(JSON.parse(readFileSync(`${CHART}/values.schema.json`, 'utf8')));
    const files = ['values.yaml', ...readdirSync(`${CHART}/examples`).map((f) => `examples/${f}`)];
    for (const f of files) {
      const defaults = parse(readFileSync(`${CHART}/values.yaml`, 'utf8'));
      const values = f === 'values.yaml' ? defaults : coalesce(defaults, parse(readFileSync(`${CHART}/${f}`, 'utf8')));
      expect(validate(values), `${f}: ${ajv.errorsText(validate.errors)}`).toBe(true);
    }
    const defaults = parse(readFileSync(`${CHART}/values.yaml`, 'utf8'));
    expect(validate({ ...defaults, upstream: 'ftp://x' })).toBe(false);
    expect(validate({ ...defaults, store: 'disk' })).toBe(false);
    // The bundled Redis is pinned to a full version: no moving tags.
    for (const tag of ['7', '7.4', 'latest', '7-alpine']) {
      expect(validate(coalesce(defaults, { redis: { image: { tag } } })), tag).toBe(false);
    }
    expect(validate(coalesce(defaults, { redis: { image: { tag: '7.4.10-alpine' } } }))).toBe(true);
    expect(validate(coalesce(defaults, { redis: { appendfsync: 'no' } }))).toBe(false);
    const r = await helm(['template', 'cg', CHART, '--set', 'service.port=eighty']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("values don't meet the specifications of the schema");
  });

  it('the sidecar example: a native sidecar in front of the app on localhost, the Service port on creditgate', () => {
    const docs = parseManifests(readFileSync('examples/kubernetes/sidecar-deployment.yaml', 'utf8'));
    const deploy = docs.find((d) => d.kind === 'Deployment')!;
    const gate = deploy.spec.template.spec.initContainers[0];
    expect(gate.restartPolicy).toBe('Always');
    const env = Object.fromEntries(gate.env.map((e: { name: string; value?: string }) => [e.name, e.value]));
    const appPort = deploy.spec.template.spec.containers[0].ports[0].containerPort;
    expect(env.CREDITGATE_UPSTREAM).toBe(`http://127.0.0.1:${appPort}`);
    const svc = docs.find((d) => d.kind === 'Service')!;
    const gatePort = gate.ports.find((p: { name: string }) => p.name === svc.spec.ports[0].targetPort);
    expect(gatePort.containerPort).toBe(Number(env.PORT));
    expect(gate.volumeMounts[0]).not.toHaveProperty('subPath');
    // Several pods, each with its own creditgate: they count in one shared Redis, named by a Secret.
    expect(deploy.spec.replicas).toBeGreaterThan(1);
    const redisUrl = gate.env.find((e: { name: string }) => e.name === 'REDIS_URL');
    expect(redisUrl.valueFrom.secretKeyRef).toEqual({ name: 'creditgate', key: 'redis-url' });
    expect(redisUrl).not.toHaveProperty('value');
    const cm = docs.find((d) => d.kind === 'ConfigMap')!;
    expect(() => loadConfigText(cm.data!['credits.yaml']!, 'sidecar example')).not.toThrow();
  });
});
