// What the import and `stripe sync` share: the admin client from the
// command line, and whether an account already is as it should be (so a
// second run writes nothing).

import type { AccountView } from './admin-client.js';
import { AdminClient } from './admin-client.js';

export const adminOptions = {
  'admin-url': { type: 'string' },
  admin: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export function adminClient(values: { 'admin-url'?: string | undefined; admin?: string | undefined }, env: NodeJS.ProcessEnv): AdminClient {
  return new AdminClient(values.admin ?? values['admin-url'] ?? env.CREDITGATE_ADMIN_URL ?? 'http://127.0.0.1:9090', env.CREDITGATE_ADMIN_TOKEN);
}

/** The account already has this plan, anchor (when given) and e-mail (when given). */
export function sameAccount(current: AccountView, want: { plan: string; billingAnchor?: string | undefined; email?: string | undefined }): boolean {
  if (current.plan !== want.plan) return false;
  if (want.billingAnchor !== undefined && Date.parse(current.billingAnchor) !== Math.floor(Date.parse(want.billingAnchor) / 1000) * 1000) return false;
  return want.email === undefined || current.email === want.email;
}
