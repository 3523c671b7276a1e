// A loopback TCP relay in front of a real server, for fault tests that need
// to hold back, cut or inspect the bytes on one connection; and a
// redis-server of the test's own behind one.

import { connect, createServer, type Socket } from 'node:net';
import { startRedis } from './redis-server.js';

export interface RelayHooks {
  /** A chunk from the client: pass it on with `forward`, or do something else (cut the connection). */
  readonly toServer?: (chunk: Buffer, forward: () => void, cut: () => void) => void;
  /** A chunk from the server, likewise. */
  readonly toClient?: (chunk: Buffer, forward: () => void, cut: () => void) => void;
}

export interface TcpRelay {
  readonly port: number;
  close(): Promise<void>;
}

export async function startTcpRelay(targetPort: number, hooks: RelayHooks = {}): Promise<TcpRelay> {
  const sockets = new Set<Socket>();
  const relay = createServer((client) => {
    const server = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(server);
    const cut = () => {
      client.destroy();
      server.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      const forward = () => server.write(chunk);
      if (hooks.toServer) hooks.toServer(chunk, forward, cut);
      else forward();
    });
    server.on('data', (chunk: Buffer) => {
      const forward = () => client.write(chunk);
      if (hooks.toClient) hooks.toClient(chunk, forward, cut);
      else forward();
    });
    for (const s of [client, server]) {
      s.on('error', () => {});
      s.on('close', () => {
        cut();
        sockets.delete(s);
      });
    }
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  return {
    port: (relay.address() as { port: number }).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => relay.close(r));
    },
  };
}

/** A redis-server of the test's own behind a relay: `url` reaches Redis directly, `relayedUrl` through the relay. */
export interface RelayedRedis {
  readonly url: string;
  readonly relayedUrl: string;
  stop(): Promise<void>;
}

export async function startRelayedRedis(hooks: RelayHooks): Promise<RelayedRedis> {
  const redis = await startRedis();
  const relay = await startTcpRelay(redis.port, hooks);
  return {
    url: redis.url,
    relayedUrl: `redis://127.0.0.1:${relay.port}`,
    stop: async () => {
      await relay.close();
      await redis.stop();
    },
  };
}
