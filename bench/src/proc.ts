// CPU of other processes, from /proc (Linux): a worker process and the children it waited for, the
// PostgreSQL backends serving one database, and the time a shell's `times` builtin prints.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type pg from 'pg';

/** The kernel's clock ticks per second (`getconf CLK_TCK`, 100 where it cannot be read): the unit of /proc's CPU times. */
export function clockTicks(): number {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

const MS_PER_TICK = 1000 / clockTicks();

/**
 * utime + stime of a process, plus cutime + cstime (its children it has waited for), in ms; NaN if
 * the process is gone or /proc cannot be read. Fields 14-17 of /proc/<pid>/stat (proc(5)).
 */
export function processCpuMs(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return NaN;
  }
  // pid (comm) state ppid … utime(14) stime(15) cutime(16) cstime(17): comm may hold spaces.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * MS_PER_TICK;
}

/** CPU ms of each PostgreSQL backend connected to `database`, by pid, except the bench's own (application_name ccat-bench): the server is shared, so only ours. */
export async function backendCpuMs(admin: pg.Client, database: string): Promise<Map<number, number>> {
  const r = await admin.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name <> 'ccat-bench'",
    [database],
  );
  const out = new Map<number, number>();
  for (const { pid } of r.rows) {
    const ms = processCpuMs(pid);
    if (!Number.isNaN(ms)) out.set(pid, ms);
  }
  return out;
}

/** CPU ms of each PostgreSQL backend whose application_name is `application`, by pid. */
export async function applicationBackendCpuMs(
  admin: pg.Client,
  application: string,
): Promise<Map<number, number>> {
  const r = await admin.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
    [application],
  );
  const out = new Map<number, number>();
  for (const { pid } of r.rows) {
    const ms = processCpuMs(pid);
    if (!Number.isNaN(ms)) out.set(pid, ms);
  }
  return out;
}

/** CPU the backends used between two {@link backendCpuMs} samples (a backend new in `b` counts from 0). */
export function backendCpuDiff(a: Map<number, number>, b: Map<number, number>): number {
  let sum = 0;
  for (const [pid, ms] of b) sum += ms - (a.get(pid) ?? 0);
  return sum;
}

/**
 * Parses the output of bash's `times` builtin (two lines: the shell's user and system time, then its
 * children's, e.g. `0m0.010s 0m0.004s`) into the total CPU ms of both.
 */
export function parseTimes(text: string): number {
  let ms = 0;
  for (const m of text.matchAll(/(\d+)m([\d.]+)s/g)) ms += (Number(m[1]) * 60 + Number(m[2])) * 1000;
  return ms;
}
