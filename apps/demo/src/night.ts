// `ccat-demo --night` (issue 13.4): the same night run twice in one invocation, first without faults,
// then with a share of its operations targeted by faults, among them poison operations that crash
// every worker process that runs them. The faults target operations by id, chosen here from a seed,
// so the night knows exactly which operations no fault targeted. Prints both nights' throughput with
// the ratio, and checks: no operation that no fault targeted ended FAILED; every poison operation
// did, with POISON_OPERATION and exactly one ERROR notification.
import { createHash } from 'node:crypto';
import { formatDuration } from '@ccat/errors';
import { OPERATION_TABLES, OPERATION_TYPES, type Database, type OperationType } from '@ccat/db';
import { sql, type Kysely } from 'kysely';
import type { ConfigDocument } from './configs.js';

/** Fault kinds of a night, with their share of the targeted operations (sums to 1). */
const KINDS = [
  ['retryable', 0.45],
  ['non_retryable', 0.1],
  ['crash', 0.2],
  ['freeze', 0.1],
  ['hang', 0.13],
  // Rare, as in a real night: each one takes down isolateAfterStalls + its retry limit + 1 processes.
  ['poison', 0.02],
] as const;
type NightFault = (typeof KINDS)[number][0];

/** A night's plan: its fault rules, and which operation each kind targets (`type:id`). */
export interface NightPlan {
  readonly faults: ConfigDocument;
  readonly targeted: ReadonlyMap<string, NightFault>;
}

/**
 * The most ids an operation type can have in a fresh demo database of `packages` raw data packages
 * (bigserial ids from 1; bundles of `bundleSize`; a raw data package leaves a source copy, a buffer
 * copy and its bundle a buffer copy: the deletions). Ids past the real count target nothing.
 */
function idRange(type: OperationType, packages: number, bundleSize: number): number {
  const bundles = Math.ceil(packages / bundleSize);
  switch (type) {
    case 'raw_data_package':
    case 'long_term_archive_transfer':
      return packages;
    case 'data_transfer_package':
    case 'data_transfer':
    case 'unpack':
      return bundles;
    case 'deletion':
      return 2 * packages + bundles;
  }
}

/** A uniform draw in [0, 1) from the seed and a label: the same in every run. */
function draw(seed: string, label: string): number {
  return createHash('sha256').update(`${seed}|${label}`).digest().readUInt32BE(0) / 0x1_0000_0000;
}

/**
 * Targets `share` of each operation type's ids (a stable draw from `seed`), each with one fault kind
 * by KINDS' weights: retryable and non-retryable errors, a crash or a freeze of the worker process
 * and a hang on the first attempt, or `poison`: a crash on every attempt.
 */
export function planNight(seed: string, packages: number, bundleSize: number, share: number): NightPlan {
  const targeted = new Map<string, NightFault>();
  const ids = new Map<string, string[]>();
  for (const type of OPERATION_TYPES) {
    for (let id = 1; id <= idRange(type, packages, bundleSize); id++) {
      if (draw(seed, `${type}:${id}`) >= share) continue;
      let u = draw(seed, `${type}:${id}:kind`);
      const kind = KINDS.find(([, w]) => (u -= w) < 0)?.[0] ?? 'retryable';
      targeted.set(`${type}:${id}`, kind);
      const key = `${kind}|${type}`;
      ids.set(key, [...(ids.get(key) ?? []), String(id)]);
    }
  }
  const rules = [...ids].map(([key, operationIds]) => {
    const [kind, type] = key.split('|') as [NightFault, OperationType];
    const base = { operationTypes: [type], operationIds, stage: 'middle' };
    switch (kind) {
      case 'poison':
        // At the start: a deletion whose copy an earlier attempt removed returns before its middle.
        return { ...base, kind: 'crash', attempts: 'all', stage: 'start' };
      case 'non_retryable':
        return { ...base, kind, stage: 'start' };
      case 'freeze':
        return { ...base, kind, durationMs: 6000 };
      case 'hang':
        return { ...base, kind, durationMs: 30_000 };
      default:
        return { ...base, kind };
    }
  });
  return { faults: { enabled: true, seed, rules }, targeted };
}

/** What a night's checks found. */
export interface NightCheck {
  readonly operations: number;
  readonly completed: number;
  readonly failed: number;
  readonly innocentFailed: string[];
  readonly poison: number;
  readonly poisonFailed: number;
  readonly problems: string[];
  /** The night's stall decisions: shared (no retry used) and own. */
  readonly sharedStalls: number;
  readonly ownStalls: number;
  readonly ranAlone: number;
}

/** Reads the night's outcome from its database and checks it against the plan. */
async function checkNight(db: Kysely<Database>, plan: NightPlan): Promise<NightCheck> {
  let operations = 0;
  let completed = 0;
  const failed: { key: string; code: string | null }[] = [];
  let ranAlone = 0;
  for (const type of OPERATION_TYPES) {
    const { table, prefix } = OPERATION_TABLES[type];
    const c = (n: string) => sql.ref(`${prefix}${n}`);
    const { rows } = await sql<{ id: string; status: string; code: string | null; alone: boolean }>`
      SELECT id::text AS id, ${c('status')} AS status, ${c('last_error_code')} AS code, ${c('run_alone')} AS alone
      FROM ${sql.table(table)} WHERE ${c('status')} IS NOT NULL`.execute(db);
    for (const r of rows) {
      operations++;
      if (r.alone) ranAlone++;
      if (r.status === 'completed') completed++;
      if (r.status === 'failed') failed.push({ key: `${type}:${r.id}`, code: r.code });
    }
  }
  const problems: string[] = [];
  const innocentFailed = failed.filter((f) => !plan.targeted.has(f.key)).map((f) => `${f.key} ${f.code}`);
  if (innocentFailed.length > 0)
    problems.push(
      `${innocentFailed.length} operations no fault targeted ended FAILED: ${innocentFailed.slice(0, 10).join(', ')}`,
    );
  const errors = await sql<{ key: string; n: number }>`
    SELECT operation_type || ':' || operation_id AS key, count(*)::int AS n FROM notifications
    WHERE level = 'ERROR' AND digest_of IS NULL AND operation_id IS NOT NULL GROUP BY 1`.execute(db);
  const alerts = new Map(errors.rows.map((r) => [r.key, r.n]));
  const poison = [...plan.targeted].filter(([, k]) => k === 'poison').map(([key]) => key);
  let poisonSeen = 0;
  let poisonFailed = 0;
  for (const key of poison) {
    const [type, id] = key.split(':') as [OperationType, string];
    const { table, prefix } = OPERATION_TABLES[type];
    const { rows } = await sql<{ status: string | null }>`
      SELECT ${sql.ref(`${prefix}status`)} AS status FROM ${sql.table(table)} WHERE id = ${id}`.execute(db);
    if (rows[0]?.status == null) continue; // never created (its upstream failed)
    poisonSeen++;
    const f = failed.find((x) => x.key === key);
    if (f?.code !== 'POISON_OPERATION') {
      problems.push(
        `poison ${key} ended ${rows[0].status}${f ? ` (${f.code})` : ''}, not FAILED POISON_OPERATION`,
      );
      continue;
    }
    poisonFailed++;
    if (alerts.get(key) !== 1)
      problems.push(`poison ${key} has ${alerts.get(key) ?? 0} ERROR notifications, not 1`);
  }
  const stalls = await sql<{ counted: string | null; n: number }>`
    SELECT context->>'counted' AS counted, count(*)::int AS n FROM operation_events
    WHERE event IN ('stall_recovered', 'stall_exhausted') GROUP BY 1`.execute(db);
  const byCount = new Map(stalls.rows.map((r) => [r.counted, r.n]));
  return {
    operations,
    completed,
    failed: failed.length,
    innocentFailed,
    poison: poisonSeen,
    poisonFailed,
    problems,
    sharedStalls: byCount.get('shared') ?? 0,
    ownStalls: byCount.get('own') ?? 0,
    ranAlone,
  };
}

/** One night's figures. */
export interface NightRun {
  readonly code: number;
  readonly nightMs: number;
  readonly check?: NightCheck;
}

/** The two nights' figures and whether the faulty night passed its checks. */
export interface NightResult {
  readonly clean: NightRun;
  readonly faulty: NightRun;
  readonly ok: boolean;
}

const rate = (r: NightRun) => (r.check?.operations ?? 0) / Math.max(0.001, r.nightMs / 1000);

/**
 * Runs the night without faults, then the same night (same packages and seed) with `share` of its
 * operations targeted (planNight), through `runDemo` (real worker and monitor processes, each night
 * in a database of its own). Prints both throughputs (operations final per second, from the workers'
 * start to every operation final) with the ratio, and the checks. Stops by itself: each night ends
 * when every operation is final, or at the demo's timeout (then it fails).
 */
export async function runNight<O extends { packages: number; seed: string; out: NodeJS.WriteStream }>(
  o: O,
  share: number,
  runDemo: (
    o: O & {
      faults: ConfigDocument;
      afterNight: (db: Kysely<Database>, nightMs: number) => Promise<boolean>;
    },
  ) => Promise<number>,
): Promise<NightResult> {
  const say = (text = '') => o.out.write(`${text}\n`);
  const plan = planNight(o.seed, o.packages, 5, share);
  const night = async (faults: ConfigDocument, checked: boolean): Promise<NightRun> => {
    let run: { nightMs: number; check?: NightCheck } = { nightMs: 0 };
    const code = await runDemo({
      ...o,
      faults,
      afterNight: async (db, nightMs) => {
        const check = await checkNight(db, plan);
        run = { nightMs, check };
        return !checked || check.problems.length === 0;
      },
    });
    return { code, ...run };
  };
  say(`== night 1 of 2: ${o.packages} raw data packages, no faults ==`);
  const clean = await night({ enabled: false }, false);
  say();
  say(
    `== night 2 of 2: the same night, ${Math.round(share * 100)} % of its operations targeted by faults ==`,
  );
  const faulty = await night(plan.faults, true);
  const c = faulty.check;
  const kinds = new Map<string, number>();
  for (const k of plan.targeted.values()) kinds.set(k, (kinds.get(k) ?? 0) + 1);
  say();
  say('== the night, with and without faults (issue 13.4) ==');
  say(`  operations: ${clean.check?.operations ?? '?'} without faults, ${c?.operations ?? '?'} with`);
  say(`  targeted ids by fault: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  say(
    `  throughput without faults: ${rate(clean).toFixed(1)} operations/s (${formatDuration(clean.nightMs)})`,
  );
  say(
    `  throughput with faults:    ${rate(faulty).toFixed(1)} operations/s (${formatDuration(faulty.nightMs)})`,
  );
  say(`  ratio with / without: ${(rate(faulty) / Math.max(0.001, rate(clean))).toFixed(2)}`);
  if (c !== undefined) {
    say(`  operations no fault targeted that ended FAILED: ${c.innocentFailed.length}`);
    say(
      `  poison operations: ${c.poison}; FAILED POISON_OPERATION with exactly one ERROR notification: ${c.poisonFailed}`,
    );
    say(
      `  stalls: ${c.sharedStalls} shared (no retry used), ${c.ownStalls} own; operations that ran alone: ${c.ranAlone}`,
    );
    for (const p of c.problems) say(`  PROBLEM: ${p}`);
  }
  const ok = clean.code === 0 && faulty.code === 0 && c !== undefined && c.problems.length === 0;
  say(ok ? '  night checks hold' : '  night checks FAILED');
  return { clean, faulty, ok };
}
