// A config that cannot be used, with every problem located in its file.

export interface ConfigIssue {
  /** The file name as given, or "<object>" for a config passed as a value. */
  readonly file: string;
  /** 1-based; absent when the config did not come from text. */
  readonly line?: number | undefined;
  readonly column?: number | undefined;
  /** Dotted field path such as routes[2].charge.ai_tasks ("" for the root). */
  readonly field: string;
  readonly message: string;
}

export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}`;
  return issue.field ? `${where} ${issue.field}: ${issue.message}` : `${where}: ${issue.message}`;
}

export class ConfigError extends Error {
  readonly code = 'invalid_config';

  constructor(readonly issues: readonly ConfigIssue[]) {
    super(`invalid config:\n${issues.map((i) => `  ${formatIssue(i)}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function formatFieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}
