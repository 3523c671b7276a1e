// Every object the chart renders, for every values file and store it
// supports, with and without the Prometheus Operator API, validates against
// the Kubernetes schemas (kubernetes-models) and the Prometheus Operator CRD
// schemas (@kubernetes-models/prometheus-operator). So does the sidecar
// example.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CHART, type Doc, parseManifests, render, validateObject } from '../helpers/chart.js';

const MONITORING = ['--api-versions', 'monitoring.coreos.com/v1'];

const VALUES: [string, string[]][] = [
  ['defaults (bundled Redis)', []],
  ['examples/values-production.yaml', ['-f', `${CHART}/examples/values-production.yaml`]],
  ['examples/values-single-replica.yaml', ['-f', `${CHART}/examples/values-single-replica.yaml`]],
  ['an external redis.url', ['--set', 'redis.url=rediss://:pw@redis.example:6380', '--set', 'adminToken.value=s3cret', '--set', 'webhookSecret.value=whsec']],
  ['redis.existingSecret', ['--set', 'redis.existingSecret=shop-redis-url', '--set', 'adminToken.existingSecret=shop-admin']],
  ['redis.auth.existingSecret', ['--set', 'redis.auth.existingSecret=shop-redis']],
  [
    'everything switched on',
    [
      '--set',
      'metrics.serviceMonitor.enabled=true',
      '--set',
      'metrics.prometheusRule.enabled=true',
      '--set',
      'dashboards.enabled=true',
      '--set',
      'autoscaling.enabled=true',
      '--set',
      'rollOnConfigChange=true',
      '--set',
      'redis.persistence.storageClass=-',
      '--set',
      'imagePullSecrets[0].name=registry',
      '--set',
      'redis.nodeSelector.disk=ssd',
    ],
  ],
];

describe('rendered objects validate against the Kubernetes and Prometheus Operator schemas', () => {
  for (const [what, args] of VALUES) {
    for (const monitoring of [false, true]) {
      it(`${what}, ${monitoring ? 'with' : 'without'} the monitoring.coreos.com/v1 API`, async () => {
        const docs = await render([...args, ...(monitoring ? MONITORING : [])]);
        expect(docs.length).toBeGreaterThan(0);
        for (const doc of docs) validateObject(doc);
        // The monitoring objects exist exactly when their API does (and they are enabled).
        const monitors = docs.filter((d) => d.apiVersion === 'monitoring.coreos.com/v1');
        if (!monitoring) expect(monitors).toEqual([]);
        if (monitoring && (what.startsWith('everything') || what.includes('production'))) {
          expect(monitors.map((d) => d.kind).sort()).toEqual(['PrometheusRule', 'ServiceMonitor']);
        }
      });
    }
  }

  it('the sidecar example', () => {
    const docs = parseManifests(readFileSync('examples/kubernetes/sidecar-deployment.yaml', 'utf8'));
    expect(docs.map((d) => d.kind)).toEqual(['ConfigMap', 'Deployment', 'Service']);
    for (const doc of docs) validateObject(doc);
  });
});

describe('the validation itself', () => {
  it('refuses an invalid object, and any kind it has no schema for', async () => {
    const deploy = (await render()).find((d) => d.kind === 'Deployment')!;
    expect(() => validateObject(deploy)).not.toThrow();
    const broken: Doc = structuredClone(deploy);
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'eighty';
    expect(() => validateObject(broken)).toThrow(/Deployment cg-creditgate is invalid: .*containerPort/);
    const noSelector: Doc = structuredClone(deploy);
    delete noSelector.spec.selector;
    expect(() => validateObject(noSelector)).toThrow(/selector/);
    expect(() => validateObject({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'x' } })).toThrow(
      /no schema for networking\.k8s\.io\/v1\/NetworkPolicy/,
    );
    expect(() => validateObject({ apiVersion: 'apps/v1beta1', kind: 'Deployment', metadata: { name: 'x' } })).toThrow(
      /no schema for apps\/v1beta1\/Deployment/,
    );
  });
});
