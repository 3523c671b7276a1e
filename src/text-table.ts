// Plain-text tables for terminal output: columns padded to their widest cell.

export function textTable(rows: readonly (readonly string[])[], options: { indent?: string; alignRight?: readonly number[] } = {}): string {
  if (rows.length === 0) return '';
  const indent = options.indent ?? '';
  const right = new Set(options.alignRight ?? []);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map(
      (r) =>
        indent +
        r
          // A field missing from an unexpected answer prints empty rather than crashing the command.
          .map((cell, c) => (right.has(c) ? String(cell ?? '').padStart(widths[c]!) : String(cell ?? '').padEnd(widths[c]!)))
          .join('  ')
          .trimEnd(),
    )
    .join('\n');
}
