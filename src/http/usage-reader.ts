// Reads usage numbers from a response body as it streams past, without ever
// holding the stream back: a JSON body is kept up to a byte limit and read
// when it ends; a text/event-stream is parsed event by event (WHATWG HTML
// §9.2.6: lines end in CRLF, LF or CR; a blank line ends an event; `data:`
// lines join with LF), and for each path the last number seen counts.

import { StringDecoder } from 'node:string_decoder';
import { readJsonPath } from '../domain/cost-rules.js';

/** An event larger than this is skipped rather than buffered. */
export const MAX_EVENT_BYTES = 1024 * 1024;

export interface UsageRead {
  /** The last number seen per path; paths never seen are absent. */
  readonly values: ReadonlyMap<string, number>;
  /** A JSON body over the byte limit: nothing was read from it. */
  readonly tooLarge: boolean;
}

export function isEventStream(contentType: string | string[] | undefined): boolean {
  return typeof contentType === 'string' && /^\s*text\/event-stream\s*(;|$)/i.test(contentType);
}

export class UsageReader {
  readonly stream: boolean;
  private readonly values = new Map<string, number>();
  // JSON body
  private chunks: Buffer[] = [];
  private size = 0;
  private tooLarge = false;
  // Event stream
  private readonly decoder = new StringDecoder('utf8');
  private carry = '';
  private data: string[] = [];
  private eventChars = 0;
  /** The current event outgrew MAX_EVENT_BYTES: ignored up to its blank line. */
  private skipping = false;
  /** A line too long to keep was dropped: its rest, up to the line end, is not a line of its own. */
  private droppingLine = false;

  constructor(
    private readonly paths: readonly string[],
    contentType: string | string[] | undefined,
    private readonly maxBytes: number,
  ) {
    this.stream = isEventStream(contentType);
  }

  add(chunk: Buffer): void {
    if (this.stream) this.addText(this.decoder.write(chunk));
    else if (!this.tooLarge) {
      this.size += chunk.length;
      if (this.size > this.maxBytes) {
        this.tooLarge = true;
        this.chunks = [];
      } else this.chunks.push(chunk);
    }
  }

  /** What was read. For a JSON body, call once the body has ended. */
  end(): UsageRead {
    // A CR that ended the stream was a line end after all.
    if (this.stream && this.carry.endsWith('\r')) {
      this.line(this.carry.slice(0, -1));
      this.carry = '';
    }
    if (!this.stream && !this.tooLarge && this.chunks.length > 0) {
      const body = Buffer.concat(this.chunks);
      this.chunks = [];
      this.take(body.toString('utf8'));
    }
    return { values: this.values, tooLarge: this.tooLarge };
  }

  private addText(text: string): void {
    const all = this.carry + text;
    let start = 0;
    for (let i = 0; i < all.length; i++) {
      const c = all.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // A CR last in the chunk may be half of a CRLF: wait for the next chunk.
      if (c === 13 && i + 1 === all.length) break;
      this.line(all.slice(start, i));
      if (c === 13 && all.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
    }
    this.carry = all.slice(start);
    if (this.carry.length + this.eventChars > MAX_EVENT_BYTES) {
      // Never buffer an oversized event: drop what is kept of it.
      this.carry = '';
      this.droppingLine = true;
      this.skip();
    }
  }

  private line(line: string): void {
    if (this.droppingLine) {
      this.droppingLine = false;
      return;
    }
    if (line === '') {
      if (!this.skipping && this.data.length > 0) this.take(this.data.join('\n'));
      this.data = [];
      this.eventChars = 0;
      this.skipping = false;
      return;
    }
    if (this.skipping) return;
    this.eventChars += line.length;
    if (this.eventChars > MAX_EVENT_BYTES) {
      this.skip();
      return;
    }
    const colon = line.indexOf(':');
    if (colon === 0) return; // a comment
    const field = colon < 0 ? line : line.slice(0, colon);
    if (field !== 'data') return;
    const value = colon < 0 ? '' : line.slice(colon + 1);
    this.data.push(value.startsWith(' ') ? value.slice(1) : value);
  }

  private skip(): void {
    this.skipping = true;
    this.data = [];
  }

  /** One JSON document (a body, or an event's data): the numbers at the paths, when it parses. */
  private take(text: string): void {
    if (text === '[DONE]') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return;
    }
    for (const path of this.paths) {
      const v = readJsonPath(parsed, path);
      if (typeof v === 'number' && Number.isFinite(v) && v >= 0) this.values.set(path, v);
    }
  }
}
