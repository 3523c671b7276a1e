// Where the chart's creditgate counts credits: the bundled Redis (default), an
// external one, or — explicitly, for one replica — memory; and the values
// under which several processes would count on their own, which must not
// render at all.

import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHART, type Doc, byKind, envOf, one, render, renderError, selects } from '../helpers/chart.js';
import { helm } from '../helpers/helm.js';

const gateContainer = (docs: Doc[]) => one(docs, 'Deployment').spec.template.spec.containers[0];

/** The value after `flag` in an argument list (`--appendonly yes`). */
function argAfter(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

/** The shell command of an exec probe, as one string. */
const probeCommand = (probe: { exec?: { command: string[] } }): string => (probe.exec?.command ?? []).join(' ');

describe('the bundled Redis (redis.enabled, the default)', () => {
  let docs: Doc[];
  let sts: Doc;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let pod: any, redis: any;
  let secret: Doc;
  let password: string;
  let redisSvc: Doc;
  beforeAll(async () => {
    docs = await render();
    sts = one(docs, 'StatefulSet');
    pod = sts.spec.template.spec;
    redis = pod.containers[0];
    secret = one(docs, 'Secret', 'cg-creditgate-redis-auth');
    password = Buffer.from(secret.data!['redis-password']!, 'base64').toString();
    redisSvc = one(docs, 'Service', 'cg-creditgate-redis');
  });

  it('is one Redis pod of the official image, pinned to a full 7.x version', () => {
    expect(sts.metadata.name).toBe('cg-creditgate-redis');
    expect(sts.spec.replicas).toBe(1);
    expect(pod.containers).toHaveLength(1);
    expect(redis.image).toMatch(/^docker\.io\/library\/redis:7\.\d+\.\d+$/);
    expect(sts.metadata.labels).toMatchObject({
      'app.kubernetes.io/name': 'redis',
      'app.kubernetes.io/instance': 'cg',
      'app.kubernetes.io/component': 'credit-store',
      'app.kubernetes.io/part-of': 'creditgate',
      'app.kubernetes.io/managed-by': 'Helm',
    });
  });

  it('writes an append-only file (fsync every second) to a PersistentVolumeClaim, and never evicts', () => {
    expect(redis.args[0]).toBe('redis-server');
    // Parsed as YAML 1.1 like Kubernetes does: an unquoted yes would be `true` here.
    expect(argAfter(redis.args, '--appendonly')).toBe('yes');
    expect(argAfter(redis.args, '--appendfsync')).toBe('everysec');
    expect(argAfter(redis.args, '--maxmemory-policy')).toBe('noeviction');
    expect(argAfter(redis.args, '--dir')).toBe('/data');
    expect(redis.volumeMounts).toEqual([{ name: 'data', mountPath: '/data' }]);
    expect(pod.volumes).toBeUndefined();
    const [claim, ...more] = sts.spec.volumeClaimTemplates;
    expect(more).toEqual([]);
    expect(claim.metadata.name).toBe('data');
    expect(claim.spec.accessModes).toEqual(['ReadWriteOnce']);
    expect(claim.spec.resources.requests.storage).toBe('1Gi');
    expect(claim.spec).not.toHaveProperty('storageClassName');
  });

  it('takes its password from the generated Secret: 32 alphanumerics, safe inside a URL', () => {
    expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(argAfter(redis.args, '--requirepass')).toBe('$(REDIS_PASSWORD)');
    const env = envOf(redis);
    const ref = { name: 'cg-creditgate-redis-auth', key: 'redis-password' };
    expect(env.get('REDIS_PASSWORD')!.valueFrom!.secretKeyRef).toEqual(ref);
    // redis-cli in the probes reads REDISCLI_AUTH.
    expect(env.get('REDISCLI_AUTH')!.valueFrom!.secretKeyRef).toEqual(ref);
    expect(JSON.stringify(sts)).not.toContain(password);
  });

  it('is probed with an authenticated redis-cli ping, and requested resources', () => {
    for (const probe of [redis.livenessProbe, redis.readinessProbe]) {
      expect(probe.exec.command.slice(0, 2)).toEqual(['sh', '-c']);
      expect(probeCommand(probe)).toMatch(/redis-cli .*ping/);
    }
    // redis-cli exits 0 on an error reply (NOAUTH): readiness must compare the answer.
    expect(probeCommand(redis.readinessProbe)).toContain('= PONG');
    expect(probeCommand(redis.livenessProbe)).toContain('PONG');
    expect(redis.resources.requests).toEqual({ cpu: '100m', memory: '128Mi' });
    expect(redis.resources.limits.memory).toBe('512Mi');
  });

  it('runs hardened: non-root redis user, read-only root filesystem, no capabilities, no API token', () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 999, fsGroup: 999, seccompProfile: { type: 'RuntimeDefault' } });
    expect(redis.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(pod.automountServiceAccountToken).toBe(false);
  });

  it('has a Service that reaches the Redis pod, and selectors that never mix Redis and creditgate pods', () => {
    const redisPod: Record<string, string> = sts.spec.template.metadata.labels;
    const gatePod: Record<string, string> = one(docs, 'Deployment').spec.template.metadata.labels;
    expect(sts.spec.serviceName).toBe(redisSvc.metadata.name);
    expect(selects(sts.spec.selector.matchLabels, redisPod)).toBe(true);
    expect(selects(redisSvc.spec.selector, redisPod)).toBe(true);
    expect(selects(redisSvc.spec.selector, gatePod)).toBe(false);
    expect(redisSvc.spec.ports).toEqual([{ name: 'redis', port: 6379, targetPort: 'redis', protocol: 'TCP' }]);
    expect(redis.ports).toEqual([{ name: 'redis', containerPort: 6379, protocol: 'TCP' }]);
    // creditgate's Service and PDB must not count the Redis pod as theirs.
    expect(selects(one(docs, 'Service', 'cg-creditgate').spec.selector, redisPod)).toBe(false);
    expect(selects(one(docs, 'PodDisruptionBudget').spec.selector.matchLabels, redisPod)).toBe(false);
    // A chart upgrade alone (new helm.sh/chart label) does not restart Redis.
    expect(redisPod).not.toHaveProperty('helm.sh/chart');
  });

  it("creditgate's REDIS_URL names that Service, with the password from the Secret expanded into it", () => {
    const env = envOf(gateContainer(docs));
    const pw = env.get('REDIS_PASSWORD')!;
    const url = env.get('REDIS_URL')!;
    expect(pw.valueFrom!.secretKeyRef).toEqual({ name: secret.metadata.name, key: 'redis-password' });
    expect(url.value).toBe('redis://:$(REDIS_PASSWORD)@cg-creditgate-redis.shop.svc:6379');
    // Kubernetes expands $(VAR) only from variables listed before it.
    expect(pw.index).toBeLessThan(url.index);
    const parsed = new URL(url.value!.replace('$(REDIS_PASSWORD)', password));
    expect(parsed.password).toBe(password);
    expect(parsed.hostname).toBe(`${redisSvc.metadata.name}.shop.svc`);
    expect(Number(parsed.port)).toBe(redisSvc.spec.ports[0].port);
  });

  it('redis.persistence and redis.appendfsync are honoured', async () => {
    const custom = one(
      await render(['--set', 'redis.persistence.size=8Gi', '--set', 'redis.persistence.storageClass=fast-ssd', '--set', 'redis.appendfsync=always']),
      'StatefulSet',
    );
    expect(custom.spec.volumeClaimTemplates[0].spec).toMatchObject({ storageClassName: 'fast-ssd', resources: { requests: { storage: '8Gi' } } });
    expect(argAfter(custom.spec.template.spec.containers[0].args, '--appendfsync')).toBe('always');
    const noProvisioner = one(await render(['--set', 'redis.persistence.storageClass=-']), 'StatefulSet');
    expect(noProvisioner.spec.volumeClaimTemplates[0].spec.storageClassName).toBe('');
  });
});

describe('the generated Redis password, against a (fake) API server', () => {
  // helm template --dry-run=server lets lookup ask the cluster, here a
  // loopback server that knows one Secret, or none.
  let existing: string | undefined;
  let server: Server;
  const dir = mkdtempSync(join(tmpdir(), 'creditgate-kube-'));
  const kubeconfig = join(dir, 'kubeconfig');
  beforeAll(async () => {
    server = createServer((req, res) => {
      const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.url === '/api/v1/namespaces/shop/secrets/cg-creditgate-redis-auth' && existing !== undefined) {
        send(200, {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'cg-creditgate-redis-auth', namespace: 'shop' },
          data: { 'redis-password': Buffer.from(existing).toString('base64') },
        });
      } else if (req.url?.startsWith('/api/v1?')) {
        send(200, {
          kind: 'APIResourceList',
          groupVersion: 'v1',
          resources: [{ name: 'secrets', singularName: 'secret', namespaced: true, kind: 'Secret', verbs: ['get'] }],
        });
      } else {
        send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters: [{ name: fake, cluster: { server: "http://127.0.0.1:${port}" } }]\n` +
        'users: [{ name: fake, user: { token: fake } }]\ncontexts: [{ name: fake, context: { cluster: fake, user: fake } }]\ncurrent-context: fake\n',
    );
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });
  const renderedPassword = async () => {
    const docs = await render(['--dry-run=server', '--kubeconfig', kubeconfig, '--show-only', 'templates/redis-secret.yaml']);
    return Buffer.from(one(docs, 'Secret').data!['redis-password']!, 'base64').toString();
  };

  it('is generated when the release has none yet', async () => {
    existing = undefined;
    const first = await renderedPassword();
    expect(first).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(await renderedPassword()).not.toBe(first);
  });

  it('is kept on upgrade: the Secret found in the cluster wins', async () => {
    existing = 'KeptAcrossUpgrades42';
    expect(await renderedPassword()).toBe('KeptAcrossUpgrades42');
  });
});

describe('redis.auth.existingSecret', () => {
  it('takes the password from that Secret, for Redis and for creditgate, and generates none', async () => {
    const docs = await render(['--set', 'redis.auth.existingSecret=shop-redis', '--set', 'redis.auth.existingSecretKey=password']);
    expect(byKind(docs, 'Secret')).toEqual([]);
    const ref = { name: 'shop-redis', key: 'password' };
    const redisEnv = envOf(one(docs, 'StatefulSet').spec.template.spec.containers[0]);
    expect(redisEnv.get('REDIS_PASSWORD')!.valueFrom!.secretKeyRef).toEqual(ref);
    expect(redisEnv.get('REDISCLI_AUTH')!.valueFrom!.secretKeyRef).toEqual(ref);
    const env = envOf(gateContainer(docs));
    expect(env.get('REDIS_PASSWORD')!.valueFrom!.secretKeyRef).toEqual(ref);
    expect(env.get('REDIS_URL')!.value).toBe('redis://:$(REDIS_PASSWORD)@cg-creditgate-redis.shop.svc:6379');
  });
});

describe('an external Redis (redis.url / redis.existingSecret)', () => {
  for (const [what, args, ref] of [
    ['redis.url', ['--set', 'redis.url=rediss://:pw@redis.example:6380'], { name: 'cg-creditgate-secrets', key: 'redis-url' }],
    ['redis.existingSecret', ['--set', 'redis.existingSecret=shop-redis-url'], { name: 'shop-redis-url', key: 'redis-url' }],
    [
      'redis.existingSecret with redis.enabled=false and a key',
      ['--set', 'redis.enabled=false', '--set', 'redis.existingSecret=shop-redis-url', '--set', 'redis.existingSecretKey=url'],
      { name: 'shop-redis-url', key: 'url' },
    ],
  ] as const) {
    it(`${what}: REDIS_URL from that Secret, and no Redis deployed`, async () => {
      const docs = await render([...args]);
      expect(byKind(docs, 'StatefulSet')).toEqual([]);
      expect(byKind(docs, 'Service').map((d) => d.metadata.name)).toEqual(['cg-creditgate']);
      expect(byKind(docs, 'Secret').map((d) => d.metadata.name)).not.toContain('cg-creditgate-redis-auth');
      const env = envOf(gateContainer(docs));
      expect(env.get('REDIS_URL')!.valueFrom!.secretKeyRef).toEqual(ref);
      expect(env.has('REDIS_PASSWORD')).toBe(false);
    });
  }
});

describe('values under which credits would be counted twice do not render', () => {
  const useRedis = 'Set redis.enabled=true for the bundled Redis, or redis.url / redis.existingSecret for yours';
  const cases: [string, string[], string[]][] = [
    ['two replicas, no Redis', ['--set', 'redis.enabled=false'], ['replicaCount=2 with no Redis', 'once per pod', useRedis]],
    ['five replicas, no Redis', ['--set', 'redis.enabled=false', '--set', 'replicaCount=5'], ['replicaCount=5 with no Redis', useRedis]],
    [
      'autoscaling, no Redis',
      ['--set', 'redis.enabled=false', '--set', 'replicaCount=1', '--set', 'autoscaling.enabled=true'],
      ['autoscaling.enabled=true with no Redis', useRedis],
    ],
    [
      'one replica, neither Redis nor store=memory',
      ['--set', 'redis.enabled=false', '--set', 'replicaCount=1'],
      ['no credit store', useRedis, 'for one replica whose counts vanish on restart, store=memory'],
    ],
    [
      'store=memory with two replicas',
      ['--set', 'store=memory', '--set', 'redis.enabled=false'],
      [
        'store=memory with replicaCount=2',
        'once per pod',
        'Drop store=memory and set redis.enabled=true',
        'or run one replica (replicaCount=1, autoscaling.enabled=false)',
      ],
    ],
    [
      'store=memory with autoscaling',
      ['--set', 'store=memory', '--set', 'redis.enabled=false', '--set', 'replicaCount=1', '--set', 'autoscaling.enabled=true'],
      ['store=memory with autoscaling.enabled=true', 'or run one replica (replicaCount=1, autoscaling.enabled=false)'],
    ],
    [
      'store=memory while the bundled Redis is on',
      ['--set', 'store=memory', '--set', 'replicaCount=1'],
      ['store=memory, but redis.enabled=true would deploy a Redis that creditgate does not use', 'set redis.enabled=false as well'],
    ],
    [
      'store=memory with an external Redis',
      ['--set', 'store=memory', '--set', 'replicaCount=1', '--set', 'redis.url=redis://redis.example:6379'],
      ['store=memory, but redis.url / redis.existingSecret is set too'],
    ],
  ];
  for (const [what, args, messages] of cases) {
    it(what, async () => {
      const r = await renderError(args);
      expect(r.code).not.toBe(0);
      for (const m of messages) expect(r.stderr).toContain(m);
    });
  }

  it('the single-replica example counts in memory, explicitly, and renders', async () => {
    const values = readFileSync(`${CHART}/examples/values-single-replica.yaml`, 'utf8');
    expect(values).toMatch(/^store: memory$/m);
    const docs = await render(['-f', `${CHART}/examples/values-single-replica.yaml`]);
    expect(one(docs, 'Deployment').spec.replicas).toBe(1);
    expect(byKind(docs, 'StatefulSet')).toEqual([]);
    const env = envOf(gateContainer(docs));
    expect(env.has('REDIS_URL')).toBe(false);
    expect(env.has('REDIS_PASSWORD')).toBe(false);
  });
});

describe('the creditgate.container named template in another chart', () => {
  // A chart "shop-api" with creditgate as a dependency runs the container
  // in its own pods, passing its own .Chart, as docs/kubernetes.md shows.
  const dir = mkdtempSync(join(tmpdir(), 'creditgate-parent-'));
  beforeAll(() => {
    cpSync(CHART, join(dir, 'charts', 'creditgate'), { recursive: true });
    mkdirSync(join(dir, 'templates'));
    writeFileSync(join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: shop-api\nversion: 1.0.0\ndependencies:\n  - name: creditgate\n    version: 0.1.0\n');
    // image.tag set: the named template would default it to the including chart's appVersion.
    writeFileSync(join(dir, 'values.yaml'), 'creditgate:\n  upstream: http://127.0.0.1:3000\n  image: { tag: 0.1.0 }\nwithoutRedis: false\n');
    writeFileSync(
      join(dir, 'templates', 'deployment.yaml'),
      [
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata: { name: shop-api }',
        'spec:',
        '  replicas: 3',
        '  selector: { matchLabels: { app: shop-api } }',
        '  template:',
        '    metadata: { labels: { app: shop-api } }',
        '    spec:',
        '      containers:',
        '        - { name: app, image: "registry.example.com/shop-api:1.0.0" }',
        '        {{- $gate := .Values.creditgate }}',
        '        {{- if .Values.withoutRedis }}{{ $gate = mustMergeOverwrite (deepCopy .Values.creditgate) (dict "redis" (dict "enabled" false)) }}{{ end }}',
        '        {{- include "creditgate.container" (dict "Values" $gate "Chart" .Chart "Release" .Release) | nindent 8 }}',
        '',
      ].join('\n'),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("every pod's creditgate counts in the dependency's Redis", async () => {
    const docs = await render([], dir);
    const app = one(docs, 'Deployment', 'shop-api');
    const gate = app.spec.template.spec.containers.find((c: { name: string }) => c.name === 'creditgate');
    const env = envOf(gate);
    const svc = one(docs, 'Service', 'cg-creditgate-redis');
    const secret = one(docs, 'Secret', 'cg-creditgate-redis-auth');
    expect(env.get('REDIS_URL')!.value).toBe(`redis://:$(REDIS_PASSWORD)@${svc.metadata.name}.shop.svc:6379`);
    expect(env.get('REDIS_PASSWORD')!.valueFrom!.secretKeyRef).toEqual({ name: secret.metadata.name, key: 'redis-password' });
    expect(env.get('REDIS_PASSWORD')!.index).toBeLessThan(env.get('REDIS_URL')!.index);
  });

  it('refuses to render the container with no Redis at all', async () => {
    const r = await helm(['template', 'cg', dir, '--namespace', 'shop', '--set', 'withoutRedis=true']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('creditgate.container: no Redis, so every pod that runs this container would count credits on its own');
  });
});

describe('NOTES.txt', () => {
  // helm template does not print NOTES.txt: a copy of the chart renders it
  // into a ConfigMap through tpl, with the chart's own helpers.
  const dir = mkdtempSync(join(tmpdir(), 'creditgate-notes-'));
  beforeAll(() => {
    cpSync(CHART, dir, { recursive: true });
    writeFileSync(join(dir, 'notes-probe.txt'), readFileSync(`${CHART}/templates/NOTES.txt`, 'utf8'));
    writeFileSync(
      join(dir, 'templates', 'notes-probe.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ tpl (.Files.Get "notes-probe.txt") . | toJson }}\n',
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const notes = async (args: string[]) => one(await render(['--show-only', 'templates/notes-probe.yaml', ...args], dir), 'ConfigMap').data!.notes!;

  it('store=memory: says the counts vanish on restart and are per pod', async () => {
    const text = await notes(['-f', `${CHART}/examples/values-single-replica.yaml`]);
    expect(text).toContain('WARNING: store=memory');
    expect(text).toMatch(/counts\s+vanish when the pod restarts/);
    expect(text).toMatch(/are per pod/);
  });

  it('the bundled Redis: names it and says it is a single node', async () => {
    const text = await notes([]);
    expect(text).toContain('bundled Redis cg-creditgate-redis:6379');
    expect(text).toContain('single node');
    expect(text).not.toContain('store=memory.');
  });

  it('an external Redis: no warning', async () => {
    const text = await notes(['-f', `${CHART}/examples/values-production.yaml`]);
    expect(text).toContain('Credits are counted in your Redis (URL from Secret creditgate-redis)');
    expect(text).not.toContain('WARNING');
  });
});
