// A tiny upstream for trying creditgate out: answers every request with a
// JSON echo of what it received (method, path, account, body size, what
// creditgate reserved). A voice call (a JSON body with "minutes") reports its
// length in x-call-seconds, as a real voice agent would, for creditgate to settle.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SampleUpstream {
  readonly port: number;
  close(): Promise<void>;
}

export async function startSampleUpstream(port = 3000, host = '127.0.0.1'): Promise<SampleUpstream> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      let minutes: unknown;
      try {
        minutes = (JSON.parse(raw.toString() || '{}') as { minutes?: unknown }).minutes;
      } catch {
        minutes = undefined;
      }
      const body = JSON.stringify({
        ok: true,
        method: req.method,
        path: req.url,
        account: req.headers['x-account-id'] ?? null,
        bodyBytes: raw.length,
        reserved: req.headers['creditgate-reserved'] ?? null,
      });
      const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
      if (typeof minutes === 'number') headers['x-call-seconds'] = Math.round(minutes * 60);
      res.writeHead(200, headers);
      res.end(body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
