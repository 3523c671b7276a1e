// Rendering the Helm chart with a real helm, and checking what it renders
// against the Kubernetes and Prometheus Operator schemas.

import { ServiceMonitor, PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { helm } from './helm.js';

export const CHART = 'charts/creditgate';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Doc = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string>; namespace?: string };
  spec?: any;
  data?: Record<string, string>;
};

/**
 * Parses manifests the way Kubernetes does: YAML 1.1, where an unquoted
 * `yes` or `on` is a boolean, not the string Redis or a shell expects.
 */
export function parseManifests(text: string): Doc[] {
  return parseAllDocuments(text, { version: '1.1' })
    .map((d) => {
      if (d.errors.length > 0) throw d.errors[0];
      return d.toJS() as Doc;
    })
    .filter(Boolean);
}

/** `helm template cg charts/creditgate --namespace shop …`; fails unless helm succeeds silently. */
export async function render(args: string[] = [], chart = CHART): Promise<Doc[]> {
  const r = await helm(['template', 'cg', chart, '--namespace', 'shop', ...args]);
  if (r.code !== 0 || r.stderr !== '') throw new Error(`helm template ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return parseManifests(r.stdout);
}

/** `helm template …` that is expected to fail: its exit code and stderr. */
export async function renderError(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const r = await helm(['template', 'cg', CHART, '--namespace', 'shop', ...args]);
  return { code: r.code, stderr: r.stderr };
}

export const byKind = (docs: Doc[], kind: string): Doc[] => docs.filter((d) => d.kind === kind);

export function one(docs: Doc[], kind: string, name?: string): Doc {
  const found = byKind(docs, kind).filter((d) => name === undefined || d.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
}

/** The model class with the schema for each apiVersion and kind the chart and the examples render. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

/**
 * Validates one object against its published schema; throws on an invalid
 * object and on any apiVersion/kind this table has no schema for.
 */
export function validateObject(doc: Doc): void {
  const id = `${doc.apiVersion}/${doc.kind}`;
  const Model = MODELS[id];
  if (!Model) throw new Error(`no schema for ${id} (${doc.metadata?.name}): add its model to MODELS`);
  try {
    new Model(doc as never).validate();
  } catch (err) {
    throw new Error(`${id} ${doc.metadata?.name} is invalid: ${(err as Error).message}`);
  }
}

type Env = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } };

/** A container's env list by name, keeping the position of each entry. */
export function envOf(container: { env?: Env[] }): Map<string, Env & { index: number }> {
  return new Map((container.env ?? []).map((e, index) => [e.name, { ...e, index }]));
}

/** Does a label selector (matchLabels or a Service's plain map) select these labels? */
export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}
