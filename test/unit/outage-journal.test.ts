// The outage journal: charges and refunds kept in order, bounded, and kept
// across a restart in a journal file that is read once.

import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { takeJournalFile, writeJournalFile } from '../../src/engine/journal-file.js';
import { OutageJournal } from '../../src/engine/outage-journal.js';

const refundLine = { creditType: 'ai_tasks', cycleStart: 1000, planDelta: 5, draws: [{ grantId: 'g1', amount: 2 }] };

describe('OutageJournal', () => {
  it('keeps charges and refunds in order; only charges count as outage spend', () => {
    const j = new OutageJournal(10);
    j.record('a', 1, [{ creditType: 'ai_tasks', op: 'charge', amount: 3 }]);
    j.recordRefund('a', 2, [refundLine], 'rf_1', { key: 'k', claim: 'c' });
    expect(j.pending().map((e) => e.kind)).toEqual(['charge', 'refund']);
    expect(j.spentBy('a', 'ai_tasks')).toBe(3);
    expect(j.keep()).toEqual([
      { kind: 'charge', account: 'a', at: 1, lines: [{ creditType: 'ai_tasks', op: 'charge', amount: 3 }] },
      { kind: 'refund', account: 'a', at: 2, lines: [refundLine], refundId: 'rf_1', idempotency: { key: 'k', claim: 'c' } },
    ]);
  });

  it('is bounded: a full journal takes nothing more, and restore hands back what did not fit', () => {
    const j = new OutageJournal(2);
    expect(j.recordRefund('a', 1, [refundLine], 'rf_1')).not.toBeNull();
    expect(j.record('a', 2, [{ creditType: 'ai_tasks', op: 'charge', amount: 1 }])).not.toBeNull();
    expect(j.recordRefund('a', 3, [refundLine], 'rf_2')).toBeNull();
    const other = new OutageJournal(1);
    const left = other.restore(j.keep());
    expect(other.size).toBe(1);
    expect(left).toEqual([{ kind: 'charge', account: 'a', at: 2, lines: [{ creditType: 'ai_tasks', op: 'charge', amount: 1 }] }]);
    expect(other.spentBy('a', 'ai_tasks')).toBe(0);
  });
});

describe('journal file', () => {
  it('round-trips the entries and is removed once taken', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'cg-jf-')), 'journal.json');
    const j = new OutageJournal(10);
    j.recordRefund('a', 2, [refundLine], 'rf_1');
    writeJournalFile(path, j.keep(), Date.UTC(2026, 0, 1));
    expect(takeJournalFile(path)).toEqual(j.keep());
    expect(existsSync(path)).toBe(false);
    expect(takeJournalFile(path)).toEqual([]);
  });

  it('a file that is not a journal is refused and left in place for a person', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'cg-jf-')), 'journal.json');
    writeFileSync(path, '{"something": "else"}');
    expect(() => takeJournalFile(path)).toThrow(/not a creditgate outage journal/);
    expect(existsSync(path)).toBe(true);
  });
});
