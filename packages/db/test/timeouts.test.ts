// No wait on PostgreSQL is unbounded (adversary of issue 11 item 2, inputs 2 and 3 as a kind): a
// connection that goes silent (a TCP proxy of this test's own drops both directions, the socket stays
// open) and a server frozen by SIGSTOP (a private PostgreSQL of this test's own, `pause()`). Without a
// client-side bound, a statement on such a connection waited for ever; and a timed-out connection
// must leave the pool, or the next statement would read the late answer of the previous one.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { DatabaseConnectionError } from '@ccat/errors';
import { PrivatePostgres, within } from '@ccat/test-support';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../src/index.js';

let server: PrivatePostgres;
beforeAll(async () => {
  server = await PrivatePostgres.start();
}, 90_000);
afterAll(async () => {
  server?.resume();
  await server?.destroy();
});

/** A TCP proxy to the private server whose connections can be silenced (bytes dropped, sockets open). */
async function silencingProxy(): Promise<{ url: string; silenceAll(): void; close(): Promise<void> }> {
  const conns: { silent: boolean; sockets: Socket[] }[] = [];
  const proxy: Server = createServer((client) => {
    const up = createConnection({ host: '127.0.0.1', port: server.port });
    const c = { silent: false, sockets: [client, up] };
    conns.push(c);
    client.on('data', (d) => void (c.silent || up.write(d)));
    up.on('data', (d) => void (c.silent || client.write(d)));
    const end = (): void => {
      client.destroy();
      up.destroy();
    };
    client.on('close', end);
    up.on('close', end);
    client.on('error', () => undefined);
    up.on('error', () => undefined);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const { port } = proxy.address() as { port: number };
  return {
    url: server.url.replace(`:${server.port}/`, `:${port}/`),
    silenceAll: () => conns.forEach((c) => (c.silent = true)),
    close: async () => {
      conns.forEach((c) => c.sockets.forEach((s) => s.destroy()));
      await new Promise<void>((r) => proxy.close(() => r()));
    },
  };
}

describe('a pool over a silent or frozen PostgreSQL', () => {
  it('fails a statement on a silenced connection within statementTimeoutMs and drops that connection', async () => {
    const proxy = await silencingProxy();
    const errors: Error[] = [];
    // One connection: the statement after the timeout can only work if the silent one was dropped.
    const database = createDatabase({
      connectionString: proxy.url,
      max: 1,
      statementTimeoutMs: 1_000,
      onError: (e) => errors.push(e),
    });
    try {
      expect((await sql<{ n: number }>`SELECT 1 AS n`.execute(database.db)).rows).toEqual([{ n: 1 }]);
      proxy.silenceAll();
      const started = performance.now();
      const outcome = await within(sql`SELECT 2 AS n`.execute(database.db), 20_000);
      expect(outcome).toBeInstanceOf(Error);
      expect(outcome).toBeInstanceOf(DatabaseConnectionError);
      expect(performance.now() - started).toBeLessThan(15_000);
      // New connections through the proxy work: the pool opens one instead of queueing on the old.
      const after = await within(sql<{ n: number }>`SELECT 3 AS n`.execute(database.db), 20_000);
      expect(after).toEqual(expect.objectContaining({ rows: [{ n: 3 }] }));
      // A connection dropped on purpose is not reported as a connection fault.
      expect(errors).toEqual([]);
    } finally {
      await database.close();
      await proxy.close();
    }
  }, 60_000);

  it('bounds statements and connecting while the server is frozen, and never returns a late answer', async () => {
    const database = createDatabase({
      connectionString: server.url,
      max: 1,
      statementTimeoutMs: 1_000,
      connectTimeoutMs: 1_000,
    });
    const fresh = createDatabase({ connectionString: server.url, max: 1, connectTimeoutMs: 1_000 });
    try {
      expect((await sql<{ n: number }>`SELECT 1 AS n`.execute(database.db)).rows).toEqual([{ n: 1 }]);
      server.pause();
      try {
        // A statement on an open connection, and a new connection (accepted by the kernel, never
        // answered): both fail within their bounds.
        const statement = await within(sql`SELECT 'late' AS n`.execute(database.db), 20_000);
        expect(statement).toBeInstanceOf(Error);
        expect(statement).toBeInstanceOf(DatabaseConnectionError);
        const connect = await within(sql`SELECT 1`.execute(fresh.db), 20_000);
        expect(connect).toBeInstanceOf(Error);
      } finally {
        server.resume();
      }
      // The frozen server answers the old statement now, on a connection that is gone: the next
      // statement gets its own answer.
      const next = await within(sql<{ n: string }>`SELECT 'next' AS n`.execute(database.db), 20_000);
      expect(next).toEqual(expect.objectContaining({ rows: [{ n: 'next' }] }));
    } finally {
      server.resume();
      await database.close();
      await fresh.close();
    }
  }, 60_000);
});
