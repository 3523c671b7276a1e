// The usage reader over SSE and JSON bodies: the last number per path counts,
// [DONE], comments and non-JSON data are skipped, an oversized event is
// skipped without being buffered, and — fuzzed with a printed seed — random
// chunk boundaries and line endings read the same numbers.

import { describe, expect, it } from 'vitest';
import { MAX_EVENT_BYTES, UsageReader } from '../../src/http/usage-reader.js';
import { anthropicEvents, chatChunk, sse, usageChunk } from '../helpers/ai-upstream.js';
import { fcSeed } from '../helpers/fc-seed.js';

const SSE = 'text/event-stream; charset=utf-8';
const ANTHROPIC_PATHS = ['message.usage.input_tokens', 'usage.output_tokens'];

function read(paths: readonly string[], contentType: string, chunks: readonly (string | Buffer)[], maxBytes = 1 << 20) {
  const reader = new UsageReader(paths, contentType, maxBytes);
  for (const c of chunks) reader.add(typeof c === 'string' ? Buffer.from(c) : c);
  return Object.fromEntries(reader.end().values);
}

/** A small deterministic PRNG (mulberry32): the same seed, the same cuts. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('UsageReader', () => {
  it('reads an OpenAI stream: the final usage chunk, [DONE] skipped', () => {
    const body = [sse(chatChunk('a')), sse(chatChunk('b')), sse(usageChunk(42)), sse('[DONE]')];
    expect(read(['usage.total_tokens'], SSE, body)).toEqual({ 'usage.total_tokens': 42 });
  });

  it('reads an Anthropic stream: input tokens once, the last cumulative output tokens', () => {
    expect(read(ANTHROPIC_PATHS, SSE, anthropicEvents(25, [3, 9, 15]))).toEqual({ 'message.usage.input_tokens': 25, 'usage.output_tokens': 15 });
  });

  it('skips comments, non-JSON data, negative numbers, and joins multi-line data', () => {
    const body = [': keep-alive\n\n', 'data: not json\n\n', 'data: {"usage":\ndata: {"total_tokens": 7}}\n\n', 'data: {"usage":{"total_tokens":-1}}\n\n'];
    expect(read(['usage.total_tokens'], SSE, body)).toEqual({ 'usage.total_tokens': 7 });
  });

  it('skips an event over 1 MiB without buffering it, and reads the next one', () => {
    const huge = `data: {"pad":"${'x'.repeat(MAX_EVENT_BYTES)}","usage":{"total_tokens":999}}\n\n`;
    const parts = [huge.slice(0, 300_000), huge.slice(300_000, 900_000), huge.slice(900_000), sse(usageChunk(5))];
    expect(read(['usage.total_tokens'], SSE, parts)).toEqual({ 'usage.total_tokens': 5 });
  });

  it('a stream whose last event ends in CR CR is read to its end', () => {
    expect(read(['usage.total_tokens'], SSE, ['data: {"usage":{"total_tokens":9}}\r\r'])).toEqual({ 'usage.total_tokens': 9 });
  });

  it('an event that ends before the stream does not count', () => {
    expect(read(['usage.total_tokens'], SSE, ['data: {"usage":{"total_tokens":3}}\n'])).toEqual({});
  });

  it('reads a JSON body when it ends; one over the byte limit is not read', () => {
    const body = JSON.stringify({ usage: { total_tokens: 57 } });
    expect(read(['usage.total_tokens'], 'application/json', [body.slice(0, 5), body.slice(5)])).toEqual({ 'usage.total_tokens': 57 });
    const reader = new UsageReader(['usage.total_tokens'], 'application/json', 10);
    reader.add(Buffer.from(body));
    expect(reader.end()).toEqual({ values: new Map(), tooLarge: true });
  });

  it('fuzz: random chunk boundaries, CRLF / CR / LF line ends and split UTF-8 read the same numbers', () => {
    const seed = fcSeed('usage-reader fuzz', 20261201);
    const random = prng(seed);
    for (let run = 0; run < 300; run++) {
      const anthropic = random() < 0.5;
      const outputs = Array.from({ length: 1 + Math.floor(random() * 5) }, (_, i) => (i + 1) * (1 + Math.floor(random() * 50)));
      const events = anthropic
        ? anthropicEvents(1 + Math.floor(random() * 1000), outputs)
        : [...outputs.map(() => sse(chatChunk('héllo ✓ 日本'))), sse(usageChunk(outputs.at(-1)!)), sse('[DONE]')];
      const eol = ['\n', '\r\n', '\r'][Math.floor(random() * 3)]!;
      const bytes = Buffer.from(events.join('').replace(/\n/g, eol));
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; ) {
        // Mostly small cuts (an event split across chunks, a CRLF or a UTF-8 character cut in two), sometimes large (several events in one).
        const size = random() < 0.7 ? 1 + Math.floor(random() * 8) : 1 + Math.floor(random() * 400);
        chunks.push(bytes.subarray(at, at + size));
        at += size;
      }
      const paths = anthropic ? ANTHROPIC_PATHS : ['usage.total_tokens'];
      const whole = read(paths, SSE, [bytes]);
      expect(read(paths, SSE, chunks), `seed ${seed}, run ${run}`).toEqual(whole);
      expect(Object.keys(whole)).toHaveLength(paths.length);
    }
  });
});
