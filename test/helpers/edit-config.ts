// Edits a config text by exact string replacement, and fails loudly when an
// edit would not happen: a `from` that is missing (the config it was written
// against has changed) or ambiguous (it would edit the first of several
// places, maybe not the one meant). A test that edits a config therefore
// never runs, silently, against the unedited one.

function count(text: string, from: string): number {
  let n = 0;
  for (let at = text.indexOf(from); at >= 0; at = text.indexOf(from, at + from.length)) n++;
  return n;
}

const quote = (s: string) => JSON.stringify(s.length > 120 ? `${s.slice(0, 120)}…` : s);

/** `text` with its one occurrence of `from` replaced by `to` (taken literally: no `$&` patterns). */
export function replaceOnce(text: string, from: string, to: string): string {
  if (from === '') throw new Error('config edit: an empty string to replace');
  const n = count(text, from);
  if (n === 0) throw new Error(`config edit: ${quote(from)} is not in the config, so replacing it would change nothing`);
  if (n > 1) throw new Error(`config edit: ${quote(from)} occurs ${n} times in the config; make it unique`);
  const at = text.indexOf(from);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/** `text` with every occurrence of `from` replaced by `to`; `from` must occur exactly `times` times. */
export function replaceEvery(text: string, from: string, to: string, times: number): string {
  if (from === '') throw new Error('config edit: an empty string to replace');
  const n = count(text, from);
  if (n !== times) throw new Error(`config edit: ${quote(from)} occurs ${n} times in the config, expected ${times}`);
  return text.split(from).join(to);
}

/** Applies each `[from, to]` in turn with {@link replaceOnce}. */
export function editConfig(text: string, ...edits: [from: string, to: string][]): string {
  if (edits.length === 0) throw new Error('config edit: no edits given');
  return edits.reduce((t, [from, to]) => replaceOnce(t, from, to), text);
}

/**
 * `text` with `routes` (YAML list items, indented as the config's) added at
 * the end of its route list, which must be the config's last section: a test
 * adds routes without repeating one that is already there.
 */
export function appendRoutes(text: string, routes: string): string {
  const at = text.lastIndexOf('\nroutes:\n');
  if (at < 0) throw new Error('config edit: the config has no routes section');
  if (/\n\S/.test(text.slice(at + '\nroutes:\n'.length)))
    throw new Error('config edit: the routes section is not the last one, so appended routes would land elsewhere');
  return `${text.endsWith('\n') ? text : `${text}\n`}${routes.endsWith('\n') ? routes : `${routes}\n`}`;
}
