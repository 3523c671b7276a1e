// Starts a real sidecar (in-process, real sockets) in front of a recording
// upstream, with a config written to a temporary file.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger, type Logger } from '../../src/logger.js';
import { startSidecar, type RunningSidecar } from '../../src/sidecar.js';
import { startRecordingUpstream, type RecordingUpstream } from './recording-upstream.js';

export const ADMIN_TOKEN = 'test-admin-token';

export interface Harness {
  readonly proxy: string;
  readonly admin: string;
  readonly upstream: RecordingUpstream;
  readonly sidecar: RunningSidecar;
  readonly configPath: string;
  /** fetch against the admin port with the admin token. */
  adminFetch(path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

export function writeConfig(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'cg-e2e-')), 'credits.yaml');
  writeFileSync(path, text);
  return path;
}

export async function startHarness(options: {
  config: string;
  redis?: string;
  keyPrefix?: string;
  adminToken?: string | null;
  alertRetryBaseMs?: number;
  logger?: Logger;
  configPollMs?: number;
}): Promise<Harness> {
  const configPath = writeConfig(options.config);
  const upstream = await startRecordingUpstream();
  const adminToken = options.adminToken === null ? undefined : (options.adminToken ?? ADMIN_TOKEN);
  const sidecar = await startSidecar({
    configPath,
    upstream: upstream.url,
    port: 0,
    adminPort: 0,
    host: '127.0.0.1',
    ...(options.redis ? { redis: options.redis } : {}),
    keyPrefix: options.keyPrefix,
    adminToken,
    logger: options.logger ?? silentLogger(),
    ...(options.configPollMs === undefined ? {} : { configPollMs: options.configPollMs }),
    shutdownGraceMs: 2000,
    ...(options.alertRetryBaseMs === undefined ? {} : { alertRetryBaseMs: options.alertRetryBaseMs }),
  });
  const admin = `http://127.0.0.1:${sidecar.adminPort}`;
  return {
    proxy: `http://127.0.0.1:${sidecar.port}`,
    admin,
    upstream,
    sidecar,
    configPath,
    adminFetch: (path, init = {}) =>
      fetch(`${admin}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', ...(init.headers as Record<string, string>) },
      }),
    close: async () => {
      await sidecar.close();
      await upstream.close();
    },
  };
}

export const TEST_CONFIG = `version: 1
identity: { header: x-account-id }
defaultPlan: tiny
creditTypes:
  ai_tasks: { name: AI Task Credits, topUp: { url: "https://billing.example.com/add-ons" } }
  email_verification: { name: Email Verification, topUp: { contact: support@example.com } }
  database: { name: Database Credits }
  voice_minutes: { name: AI Voice Agent Minutes }
  mailboxes: { name: User Brought Mailboxes, kind: capacity }
plans:
  tiny: { ai_tasks: 10, email_verification: 5, database: 5, mailboxes: 1 }
  big: { ai_tasks: unlimited, email_verification: 1000, database: 1000, voice_minutes: 60, mailboxes: 5 }
store: { timeoutMs: 2000 }
routes:
  - name: generate-followups
    method: POST
    path: /v1/ai/followups
    charge: { ai_tasks: { body: count } }
  - name: verify-emails
    method: POST
    path: /v1/emails/verify
    charge: { email_verification: { bodyLength: emails } }
  - name: enrich-contact
    method: POST
    path: /v1/contacts/:id/enrich
    charge: { database: 1, email_verification: 1 }
  - name: by-header
    method: POST
    path: /v1/ai/custom
    charge: { ai_tasks: { header: x-task-count } }
  - name: by-query
    method: GET
    path: /v1/ai/report
    charge: { ai_tasks: { query: n } }
  - name: voice-call
    method: POST
    path: /v1/voice/calls
    charge: { voice_minutes: { body: minutes } }
  - name: connect-mailbox
    method: POST
    path: /v1/mailboxes
    charge: { mailboxes: 1 }
  - name: disconnect-mailbox
    method: DELETE
    path: /v1/mailboxes/:id
    release: { mailboxes: 1 }
`;
