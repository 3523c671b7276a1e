// `creditgate accounts import FILE`: account plans from any biller, as JSON
// lines. The whole file is checked before anything is written, so a bad line
// never leaves half an import behind; lines that change nothing are skipped,
// so running an import twice is harmless.

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { loadConfigFile } from '../config/index.js';
import { ACCOUNT_ID_RULE, isValidAccountId } from '../domain/account-id.js';
import { parseAnchor } from '../domain/billing-cycle.js';
import { adminClient, adminOptions, sameAccount } from './admin-sync.js';
import { CliError, usageError } from './cli-errors.js';

const line = z.strictObject({
  account: z.string().refine(isValidAccountId, `account ids are ${ACCOUNT_ID_RULE}`),
  plan: z.string().min(1),
  billingAnchor: z
    .string()
    .refine((s) => {
      try {
        parseAnchor(s);
        return true;
      } catch {
        return false;
      }
    }, 'expected an ISO 8601 instant with a UTC offset')
    .optional(),
  email: z.email().optional(),
});
type ImportLine = z.output<typeof line>;

/** Every line of the file, or every reason it cannot be imported as `FILE:line: reason`. */
export function checkImport(text: string, file: string, plans?: ReadonlySet<string>): { lines: ImportLine[]; errors: string[] } {
  const lines: ImportLine[] = [];
  const errors: string[] = [];
  const seen = new Map<string, number>();
  text.split('\n').forEach((raw, i) => {
    const at = `${file}:${i + 1}`;
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      errors.push(`${at}: not JSON (${(err as Error).message})`);
      return;
    }
    const parsed = line.safeParse(value);
    if (!parsed.success) {
      errors.push(`${at}: ${parsed.error.issues.map((e) => (e.path.length ? `${e.path.join('.')}: ${e.message}` : e.message)).join('; ')}`);
      return;
    }
    const { account, plan } = parsed.data;
    if (plans && !plans.has(plan)) errors.push(`${at}: unknown plan "${plan}" (configured: ${[...plans].join(', ')})`);
    const first = seen.get(account);
    if (first !== undefined) errors.push(`${at}: account ${account} is also on line ${first}`);
    else seen.set(account, i + 1);
    lines.push(parsed.data);
  });
  return { lines, errors };
}

export async function importCommand(args: string[], env: NodeJS.ProcessEnv, out: (text: string) => void): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...adminOptions, config: { type: 'string' } } });
  if (positionals.length !== 1) throw usageError('usage: creditgate accounts import FILE [--config F] [--admin-url URL]');
  const file = positionals[0]!;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
  // With the config, unknown plans are found before anything is written; without it the admin API refuses them.
  const plans = values.config ? new Set((await loadConfigFile(values.config)).plans.keys()) : undefined;
  const { lines, errors } = checkImport(text, file, plans);
  if (errors.length > 0) throw new CliError(`${errors.join('\n')}\n${errors.length} bad line${errors.length === 1 ? '' : 's'}: nothing imported`);
  const admin = adminClient(values, env);
  let applied = 0;
  let unchanged = 0;
  for (const l of lines) {
    const current = await admin.findAccount(l.account);
    if (current && sameAccount(current, l)) {
      unchanged++;
      continue;
    }
    await admin.putAccount(l.account, {
      plan: l.plan,
      ...(l.billingAnchor ? { billingAnchor: l.billingAnchor } : {}),
      ...(l.email ? { email: l.email } : {}),
    });
    applied++;
  }
  out(values.json ? JSON.stringify({ applied, unchanged }) : `${lines.length} accounts: ${applied} applied, ${unchanged} unchanged`);
}
