// The config-editing helper the tests use: an edit that would change nothing,
// or that could land in more than one place, fails instead of passing silently.

import { describe, expect, it } from 'vitest';
import { appendRoutes, editConfig, replaceEvery, replaceOnce } from '../helpers/edit-config.js';
import { loadConfigText } from '../../src/config/index.js';
import { TEST_CONFIG } from '../helpers/sidecar-harness.js';

describe('editConfig / replaceOnce', () => {
  it('replaces the one occurrence, literally', () => {
    expect(replaceOnce('a: 1\nb: 2\n', 'b: 2', 'b: $&3')).toBe('a: 1\nb: $&3\n');
    expect(editConfig(TEST_CONFIG, ['tiny: { ai_tasks: 10,', 'tiny: { ai_tasks: 11,'], ['ai_tasks: 11', 'ai_tasks: 12'])).toContain('tiny: { ai_tasks: 12,');
  });

  it('throws when the text to replace is missing, naming it', () => {
    expect(() => replaceOnce(TEST_CONFIG, 'tiny: { ai_tasks: 9,', 'x')).toThrow(/"tiny: \{ ai_tasks: 9," is not in the config/);
    // A later edit that an earlier one made impossible also throws.
    expect(() => editConfig(TEST_CONFIG, ['defaultPlan: tiny', 'defaultPlan: big'], ['defaultPlan: tiny', 'x'])).toThrow(/is not in the config/);
  });

  it('throws when the text to replace occurs more than once', () => {
    expect(() => replaceOnce(TEST_CONFIG, '    method: POST', 'x')).toThrow(/occurs \d+ times in the config; make it unique/);
  });

  it('refuses an empty edit list and an empty search string', () => {
    expect(() => editConfig(TEST_CONFIG)).toThrow(/no edits/);
    expect(() => replaceOnce(TEST_CONFIG, '', 'x')).toThrow(/empty/);
  });

  it('replaceEvery checks the number of occurrences', () => {
    expect(replaceEvery('x 1 y 1', '1', '2', 2)).toBe('x 2 y 2');
    expect(() => replaceEvery('x 1 y 1', '1', '2', 3)).toThrow(/occurs 2 times in the config, expected 3/);
    expect(() => replaceEvery('x', '1', '2', 1)).toThrow(/occurs 0 times/);
  });
});

describe('appendRoutes', () => {
  it('adds routes after the last one, and the config still loads with them', () => {
    const text = appendRoutes(TEST_CONFIG, '  - name: extra\n    method: POST\n    path: /v1/extra\n    charge: { ai_tasks: 2 }');
    const config = loadConfigText(text, 'test.yaml');
    expect(config.routes.match('POST', '/v1/extra')?.route.name).toBe('extra');
    expect(config.routes.match('POST', '/v1/ai/followups')?.route.name).toBe('generate-followups');
  });

  it('refuses a config whose route list is not its last section, or that has none', () => {
    expect(() => appendRoutes(`${TEST_CONFIG}cache: { accountTtlMs: 1 }\n`, '  - name: x')).toThrow(/not the last one/);
    expect(() => appendRoutes('version: 1\n', '  - name: x')).toThrow(/no routes section/);
  });
});
