// A fake OpenAI- and Anthropic-compatible upstream's answers, written on a
// real response: JSON with usage, and SSE streams with chunks spaced in time,
// in the exact event shapes those APIs send.

import type http from 'node:http';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function chatCompletion(totalTokens: number) {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1,
    model: 'fake',
    choices: [{ index: 0, message: { role: 'assistant', content: 'hi', refusal: null }, finish_reason: 'stop', logprobs: null }],
    usage: { prompt_tokens: 1, completion_tokens: totalTokens - 1, total_tokens: totalTokens },
  };
}

export function chatChunk(content: string) {
  return { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'fake', choices: [{ index: 0, delta: { content }, finish_reason: null }] };
}

/** The final chunk `stream_options.include_usage` adds: no choices, the usage. */
export function usageChunk(totalTokens: number) {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'fake',
    choices: [],
    usage: { prompt_tokens: 1, completion_tokens: totalTokens - 1, total_tokens: totalTokens },
  };
}

export const sse = (data: unknown, event?: string) => `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;

/** Anthropic's Messages stream: input tokens in message_start, cumulative output tokens in message_delta. */
export function anthropicEvents(inputTokens: number, outputSteps: readonly number[]): string[] {
  return [
    sse(
      {
        type: 'message_start',
        message: {
          id: 'msg_1',
          type: 'message',
          role: 'assistant',
          content: [],
          model: 'fake',
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: inputTokens, output_tokens: 1 },
        },
      },
      'message_start',
    ),
    sse({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start'),
    sse({ type: 'ping' }, 'ping'),
    ...outputSteps.flatMap((n) => [
      sse({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'x' } }, 'content_block_delta'),
      sse({ type: 'message_delta', delta: { stop_reason: null, stop_sequence: null }, usage: { output_tokens: n } }, 'message_delta'),
    ]),
    sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop'),
    sse({ type: 'message_stop' }, 'message_stop'),
  ];
}

/** Writes SSE chunks `gapMs` apart; resolves when the response has ended (or the client went away). */
export async function writeStream(res: http.ServerResponse, chunks: readonly string[], gapMs: number): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const [i, chunk] of chunks.entries()) {
    if (i > 0) await sleep(gapMs);
    if (res.destroyed) return;
    res.write(chunk);
  }
  res.end();
}
