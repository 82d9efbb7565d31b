// Plans of the statements a package function sends: a database handle over a pool that records every
// statement, and the scans of one statement's EXPLAIN ANALYZE (run in a transaction rolled back).
import pg from 'pg';
import { createDatabase, type CcatDatabase } from '../../src/index.js';
import type { TestDatabase } from '../../src/testing.js';

export interface Sent {
  readonly text: string;
  readonly values: readonly unknown[];
}

export interface Recording extends AsyncDisposable {
  /** A handle whose statements are recorded in `sent`, in order. */
  readonly database: CcatDatabase;
  readonly sent: Sent[];
  /** The scan nodes on `table` of the statement's plan, run and rolled back. */
  scans(statement: Sent, table: string): Promise<Record<string, unknown>[]>;
}

function planNodes(plan: Record<string, unknown>): Record<string, unknown>[] {
  const children = (plan['Plans'] as Record<string, unknown>[] | undefined) ?? [];
  return [plan, ...children.flatMap(planNodes)];
}

/** A recording handle on `t`'s schema (one connection); dispose to close it. */
export function recording(t: TestDatabase): Recording {
  const pool = new pg.Pool({ connectionString: t.url, max: 1, options: `-c search_path=${t.schema}` });
  const sent: Sent[] = [];
  const database = createDatabase({
    pool: {
      connect: async () => {
        const client = await pool.connect();
        return {
          query: ((text: string, values: unknown[]) => {
            sent.push({ text, values });
            return client.query(text, values);
          }) as never,
          release: () => client.release(),
        };
      },
      end: () => Promise.resolve(),
    },
  });
  return {
    database,
    sent,
    async scans(statement, table) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const explained = await client.query<{ 'QUERY PLAN': [{ Plan: Record<string, unknown> }] }>(
          `EXPLAIN (ANALYZE, FORMAT JSON) ${statement.text}`,
          [...statement.values],
        );
        return planNodes(explained.rows[0]!['QUERY PLAN'][0].Plan).filter(
          (n) => n['Relation Name'] === table && String(n['Node Type']).endsWith('Scan'),
        );
      } finally {
        await client.query('ROLLBACK');
        client.release();
      }
    },
    async [Symbol.asyncDispose]() {
      await database.close();
      await pool.end();
    },
  };
}
