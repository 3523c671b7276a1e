// How the creditgate command reports a problem: one line on stderr, an exit
// code that scripts can tell apart (2: wrong usage, 1: it did not work).

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, 2);
}

export function parsePort(value: string | undefined, fallback: number, what: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw usageError(`${what} must be a port number, got ${JSON.stringify(value)}`);
  return n;
}
