// Secrets in the config are written `env:NAME` so the YAML (a ConfigMap) never
// holds them; anything else is taken literally.

export function resolveSecret(ref: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (ref === undefined) return undefined;
  if (!ref.startsWith('env:')) return ref;
  const value = env[ref.slice(4)];
  return value === undefined || value === '' ? undefined : value;
}

/** The env:NAME references whose variable is unset, for a clear startup error. */
export function missingSecretEnv(refs: readonly (string | undefined)[], env: NodeJS.ProcessEnv = process.env): string[] {
  return refs.filter((r): r is string => r?.startsWith('env:') === true && resolveSecret(r, env) === undefined).map((r) => r.slice(4));
}
