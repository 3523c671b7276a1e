// The path the upstream will act on, so that what is charged is what runs.
// Routing and forwarding both use the normalised form; a path that cannot be
// normalised without guessing how the upstream would read it is refused.
//
//   //v1//ai/followups      → /v1/ai/followups      (empty segments collapse)
//   /v1/x/../ai/./followups → /v1/ai/followups      (dot segments, RFC 3986 §5.2.4)
//   /v1/ai/%66ollowups      → /v1/ai/followups      (unreserved characters decoded, §6.2.2.2)
//   /v1/ai/followups;a=b    → /v1/ai/followups      (matrix parameters removed)
//   /v1%2Fai%2Ffollowups    → refused: an encoded slash means one path to
//                             some servers and another to others
//   /v1/ai\followups, %00, %5C, control characters, ".." above the root → refused

export type NormalizedPath = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: string };

const UNRESERVED = /[A-Za-z0-9\-._~]/;

function decodeSegment(segment: string): string | { reason: string } {
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c !== '%') {
      out += c;
      continue;
    }
    const hex = segment.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return { reason: `malformed percent-encoding "%${hex}"` };
    const code = parseInt(hex, 16);
    const ch = String.fromCharCode(code);
    if (ch === '/' || ch === '\\') return { reason: 'encoded slashes are not accepted in paths' };
    if (code < 0x20 || code === 0x7f) return { reason: 'encoded control characters are not accepted in paths' };
    out += UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
    i += 2;
  }
  return out;
}

// A path with nothing to normalise: segments of unreserved and sub-delim
// characters only (no %, no ;), none empty, none "." or "..". Most requests
// look like this, and it is returned as it is, with no split or decode.
const ALREADY_NORMAL = /^(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9\-._~!$&'()*+,=:@]+)+\/?$/;

export function normalizePath(raw: string): NormalizedPath {
  if (raw === '/' || ALREADY_NORMAL.test(raw)) return { ok: true, path: raw };
  return normalizePathFully(raw);
}

/** The whole algorithm, whatever the path (normalizePath skips it for paths that are already normal). */
export function normalizePathFully(raw: string): NormalizedPath {
  let path = raw;
  if (/^https?:\/\//i.test(path)) {
    // Absolute-form request target: the path is what counts.
    try {
      path = new URL(path).pathname;
    } catch {
      return { ok: false, reason: 'malformed request target' };
    }
  }
  if (!path.startsWith('/')) return { ok: false, reason: 'the path must start with /' };
  if (path.includes('\\')) return { ok: false, reason: 'backslashes are not accepted in paths' };
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused here
  if (/[\x00-\x20\x7f]/.test(path)) return { ok: false, reason: 'control characters and spaces are not accepted in paths' };
  const trailing = path.length > 1 && path.endsWith('/');
  const out: string[] = [];
  for (const rawSegment of path.split('/')) {
    const withoutParams = rawSegment.split(';', 1)[0]!;
    const decoded = decodeSegment(withoutParams);
    if (typeof decoded !== 'string') return { ok: false, reason: decoded.reason };
    if (decoded === '' || decoded === '.') continue;
    if (decoded === '..') {
      if (out.length === 0) return { ok: false, reason: '".." above the root' };
      out.pop();
      continue;
    }
    out.push(decoded);
  }
  const joined = `/${out.join('/')}`;
  return { ok: true, path: trailing && out.length > 0 ? `${joined}/` : joined };
}

export const METHOD_OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const;
