// Keeps the outage journal across a restart: written at shutdown when the
// store could not take it, read back (and removed) at start, then replayed.
// Refunds carry ids the store applies once, so a journal replayed twice
// gives nothing back twice.

import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { KeptEntry } from './outage-journal.js';

interface JournalFileBody {
  readonly version: 1;
  readonly writtenAt: string;
  readonly entries: readonly KeptEntry[];
}

/** Writes the entries whole or not at all (written aside, then renamed into place). */
export function writeJournalFile(path: string, entries: readonly KeptEntry[], now: number): void {
  const body: JournalFileBody = { version: 1, writtenAt: new Date(now).toISOString(), entries };
  const partial = `${path}.${process.pid}.partial`;
  writeFileSync(partial, `${JSON.stringify(body)}\n`, { mode: 0o600 });
  renameSync(partial, path);
}

/**
 * The entries of a journal file, which is removed once read (they live in
 * the process again). [] when there is none. Throws on a file that is not a
 * journal, leaving it for a person to look at.
 */
export function takeJournalFile(path: string): KeptEntry[] {
  if (!existsSync(path)) return [];
  const body = JSON.parse(readFileSync(path, 'utf8')) as Partial<JournalFileBody>;
  if (body.version !== 1 || !Array.isArray(body.entries)) throw new Error(`${path} is not a creditgate outage journal`);
  rmSync(path);
  return [...body.entries];
}
