// The reload log's `changes`: what a config edit changed, as short lines.

import { describe, expect, it } from 'vitest';
import { diffConfigs } from '../../src/config/config-diff.js';
import { parseConfigText } from '../../src/config/load-config.js';
import { editConfig } from '../helpers/edit-config.js';
import { TEST_CONFIG } from '../helpers/sidecar-harness.js';

const parse = (text: string) => parseConfigText(text, 'credits.yaml');
const diff = (after: string) => diffConfigs(parse(TEST_CONFIG), parse(after));

describe('diffConfigs', () => {
  it('is empty for the same config, also reformatted with a comment', () => {
    expect(diff(TEST_CONFIG)).toEqual([]);
    expect(diff(`# a comment\n${TEST_CONFIG.replace('store: { timeoutMs: 2000 }', 'store:\n  timeoutMs: 2000')}`)).toEqual([]);
  });

  it('names a changed allowance, an added and a removed quota', () => {
    const after = editConfig(TEST_CONFIG, ['tiny: { ai_tasks: 10, email_verification: 5,', 'tiny: { ai_tasks: 20, voice_minutes: 3,']);
    expect(diff(after)).toEqual(['plans.tiny.ai_tasks: 10 → 20', 'plans.tiny.email_verification: 5 → (none)', 'plans.tiny.voice_minutes: (none) → 3']);
  });

  it('names added, removed and changed routes with the fields that changed, and credit types', () => {
    const after = editConfig(
      TEST_CONFIG,
      ['charge: { database: 1, email_verification: 1 }', 'charge: { database: 2, email_verification: 1 }'],
      ['  - name: by-query\n    method: GET\n    path: /v1/ai/report\n    charge: { ai_tasks: { query: n } }\n', ''],
      ['  database: { name: Database Credits }\n', '  database: { name: Database Credits }\n  ai_tokens: { name: AI Tokens }\n'],
    );
    const withRoute = `${after}  - name: export-contacts\n    method: POST\n    path: /v1/contacts/export\n    charge: { database: 1 }\n`;
    expect(diff(withRoute)).toEqual(['creditTypes + ai_tokens', 'routes + export-contacts', 'routes - by-query', 'routes ~ enrich-contact (charge)']);
  });

  it('names other settings leaf by leaf and never shows a secret', () => {
    const after = editConfig(TEST_CONFIG, [
      'store: { timeoutMs: 2000 }',
      'store: { timeoutMs: 100 }\nalerts: { webhook: { url: "https://h.example/x", secret: s3cret } }',
    ]);
    const changes = diff(after);
    expect(changes).toContain('store.timeoutMs: 2000 → 100');
    expect(changes).toContain('alerts.webhook.url: (none) → https://h.example/x');
    expect(changes).toContain('alerts.webhook.secret changed');
    expect(changes.join('\n')).not.toContain('s3cret');
  });
});
