// Durations in config: "500ms", "1s", "5m", "1h".

const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (!m) throw new Error(`not a duration: ${JSON.stringify(text)} (expected e.g. 500ms, 1s, 5m, 1h)`);
  return Number(m[1]) * UNITS[m[2] as keyof typeof UNITS];
}
