#!/usr/bin/env node
// The creditgate command: run the sidecar, check configs, talk to the admin API.

import { readFileSync } from 'node:fs';
import { ConfigError, formatIssue } from './config/config-error.js';
import { accountsCommand, eventsCommand, topUpCommand, topUpsCommand, usageCommand } from './cli/admin-commands.js';
import { importCommand } from './cli/accounts-import.js';
import { CliError } from './cli/cli-errors.js';
import { explainCommand } from './cli/explain.js';
import { asksForHelp, SUBCOMMAND_HELP } from './cli/help.js';
import { stripeCommand } from './cli/stripe-sync.js';
import { checkConfigCommand, demoCommand, sampleUpstreamCommand, schemaCommand, serveCommand } from './cli/server-commands.js';

const USAGE = `creditgate — credit pools for AI and data endpoints

Run:
  creditgate serve --config FILE --upstream URL [--port 8080] [--admin-port 9090]
                   [--host ADDR] [--redis redis://…]
      env fallbacks: CREDITGATE_CONFIG, CREDITGATE_UPSTREAM, PORT, ADMIN_PORT,
                     HOST, REDIS_URL; admin token: CREDITGATE_ADMIN_TOKEN
  creditgate demo                  sample upstream on :3000 + sidecar on :8080/:9090,
                                   example config, memory store
  creditgate sample-upstream [--port 3000]

Config:
  creditgate check-config FILE     validate a config; print its summary or its errors
  creditgate schema                print the config's JSON Schema
  creditgate explain --config FILE METHOD PATH [--header 'n: v'] [--query Q] [--body JSON|@FILE]
                     [--json] [--account ID --admin URL]
                                   dry run: the route and charge a request would get

Accounts (admin API at --admin-url or CREDITGATE_ADMIN_URL, default http://127.0.0.1:9090;
token from CREDITGATE_ADMIN_TOKEN; --json for machine-readable output):
  creditgate accounts set ID --plan P [--anchor ISO] [--email E]
  creditgate accounts get ID
  creditgate accounts delete ID
  creditgate usage ID
  creditgate topup ID --type T --amount N [--expires ISO] [--idempotency-key K]
  creditgate topups ID
  creditgate events ID [--limit 20]
  creditgate accounts import FILE [--config F]
                                   JSON lines {"account","plan","billingAnchor"?,"email"?};
                                   all lines checked first, then applied (idempotent)

Billing (docs/billing-sync.md):
  creditgate stripe sync --config F [--admin URL] [--dry-run]
                                   apply every account's newest Stripe subscription;
                                   key from billing.stripe.apiKey, STRIPE_API_BASE for another host

  creditgate --version
  creditgate COMMAND --help        a command's options
`;

const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const [command, ...rest] = argv;
  // Every subcommand answers --help with its own options, and runs nothing.
  const help = command === undefined ? undefined : SUBCOMMAND_HELP[command];
  if (help !== undefined && asksForHelp(rest)) return out(help);
  switch (command) {
    case 'serve':
      return serveCommand(rest, env);
    case 'demo':
      return demoCommand(env);
    case 'sample-upstream':
      return sampleUpstreamCommand(rest);
    case 'check-config':
      return checkConfigCommand(rest, out);
    case 'schema':
      return schemaCommand(out);
    case 'explain':
      return explainCommand(rest, env, out);
    case 'accounts':
      return rest[0] === 'import' ? importCommand(rest.slice(1), env, out) : accountsCommand(rest, env, out);
    case 'stripe':
      return stripeCommand(rest, env, out);
    case 'usage':
      return usageCommand(rest, env, out);
    case 'topup':
      return topUpCommand(rest, env, out);
    case 'topups':
      return topUpsCommand(rest, env, out);
    case 'events':
      return eventsCommand(rest, env, out);
    case '--version':
    case 'version': {
      const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
      return out(pkg.version);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      out(USAGE.trimEnd());
      return;
    default:
      process.stderr.write(USAGE);
      throw new CliError(`unknown command ${JSON.stringify(command)}`, 2);
  }
}

main(process.argv.slice(2), process.env).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    for (const issue of err.issues) process.stderr.write(`${formatIssue(issue)}\n`);
    process.exit(1);
  }
  if (err instanceof CliError) {
    process.stderr.write(err.exitCode === 2 ? `creditgate: ${err.message}\n` : `${err.message.includes('\n') ? '' : 'creditgate: '}${err.message}\n`);
    process.exit(err.exitCode);
  }
  // parseArgs reports unknown flags as TypeErrors with a code.
  if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`creditgate: ${(err as Error).message}\n`);
    process.exit(2);
  }
  process.stderr.write(`creditgate: ${(err as Error).message}\n`);
  process.exit(1);
});
