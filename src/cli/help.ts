// `creditgate SUBCOMMAND --help`: each subcommand's usage and options, so an
// operator never has to start something to learn how to call it.

import { EXPLAIN_HELP } from './explain.js';
import { CHECK_CONFIG_HELP } from './server-commands.js';

const ADMIN = `  --admin-url URL   the admin API (or CREDITGATE_ADMIN_URL; default http://127.0.0.1:9090);
                    token from CREDITGATE_ADMIN_TOKEN
  --json            machine-readable output`;

export const SUBCOMMAND_HELP: Readonly<Record<string, string>> = {
  serve: `usage: creditgate serve --config FILE --upstream URL [options]
  run the sidecar in front of URL
  --config FILE       the config (or CREDITGATE_CONFIG)
  --upstream URL      where allowed requests go (or CREDITGATE_UPSTREAM)
  --port N            the proxy port (or PORT; default 8080)
  --admin-port N      admin API, health, metrics (or ADMIN_PORT; default 9090)
  --host ADDR         the address to listen on (or HOST)
  --redis URL         redis://, rediss://, redis+cluster://…, redis+sentinel://… (or REDIS_URL);
                      without it: the in-memory store, one replica only
  admin token: CREDITGATE_ADMIN_TOKEN; log level: LOG_LEVEL`,
  demo: `usage: creditgate demo
  a sample upstream on :3000 and the sidecar on :8080 (admin :9090), with the example config
  and the memory store; admin token from CREDITGATE_ADMIN_TOKEN, else dev-admin-token`,
  'sample-upstream': `usage: creditgate sample-upstream [--port 3000] [--host 127.0.0.1]
  a small upstream that answers every route of the example config`,
  'check-config': CHECK_CONFIG_HELP,
  schema: `usage: creditgate schema
  print the config's JSON Schema (config/creditgate.schema.json)`,
  explain: EXPLAIN_HELP,
  accounts: `usage: creditgate accounts set ID --plan P [--anchor ISO] [--email E]
       creditgate accounts get ID | accounts delete ID
       creditgate accounts import FILE [--config F]   JSON lines {"account","plan","billingAnchor"?,"email"?}
${ADMIN}`,
  usage: `usage: creditgate usage ID
  per pool: used, allowance, remaining, reset
${ADMIN}`,
  topup: `usage: creditgate topup ID --type CREDIT_TYPE --amount N [--expires ISO] [--idempotency-key K]
${ADMIN}`,
  topups: `usage: creditgate topups ID
  the account's active top-ups
${ADMIN}`,
  events: `usage: creditgate events ID [--limit 20]
  the account's alert events, newest first
${ADMIN}`,
  stripe: `usage: creditgate stripe sync --config FILE [--admin URL] [--dry-run] [--json]
  apply every account's newest Stripe subscription through the admin API;
  key from billing.stripe.apiKey, STRIPE_API_BASE for another host`,
  version: `usage: creditgate --version`,
};

/** Whether the arguments ask for help (before any `--`, after which everything is an operand). */
export function asksForHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}
