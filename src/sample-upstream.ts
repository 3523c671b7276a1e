// A tiny upstream for trying creditgate out: answers every request with a
// JSON echo of what it received (method, path, account, body size).

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SampleUpstream {
  readonly port: number;
  close(): Promise<void>;
}

export async function startSampleUpstream(port = 3000, host = '127.0.0.1'): Promise<SampleUpstream> {
  const server = http.createServer((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => {
      const body = JSON.stringify({
        ok: true,
        method: req.method,
        path: req.url,
        account: req.headers['x-account-id'] ?? null,
        bodyBytes: bytes,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
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
