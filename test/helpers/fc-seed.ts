// The seed of a property-based test file: FC_SEED when set, else the file's
// fixed default, so that every run is the same run unless asked otherwise.
// It is printed once, so a failure can be replayed with FC_SEED=<seed>
// (the fuzz run does the same with FUZZ_SEED).

export function fcSeed(label: string, fallback: number): number {
  const raw = process.env.FC_SEED;
  const seed = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isSafeInteger(seed)) throw new Error(`FC_SEED must be an integer, got ${JSON.stringify(raw)}`);
  process.stdout.write(`${label}: FC_SEED=${seed}\n`);
  return seed;
}
