// CPU used by the parts of a benchmark: this process, the Redis server and (where /proc exists)
// the PostgreSQL server processes. On a machine whose cores are all busy, throughput follows CPU per
// job, so this says where a difference comes from.
import { readdirSync, readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { clockTicks } from './proc.js';

export interface CpuSample {
  /** Milliseconds of CPU. `postgres` is NaN where /proc cannot be read. */
  node: number;
  redis: number;
  postgres: number;
}

export class CpuMeter {
  readonly #redis: Redis;
  readonly #msPerTick = 1000 / clockTicks();

  constructor(redis: Redis) {
    this.#redis = redis;
  }

  async sample(): Promise<CpuSample> {
    const u = process.cpuUsage();
    const info = await this.#redis.info('cpu');
    const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? NaN);
    return {
      node: (u.user + u.system) / 1000,
      redis: (field('used_cpu_sys') + field('used_cpu_user')) * 1000,
      postgres: this.#postgres(),
    };
  }

  /** utime + stime of every process named postgres, in ms (backends that exit in between are lost). */
  #postgres(): number {
    let pids: string[];
    try {
      pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
    } catch {
      return NaN;
    }
    let ticks = 0;
    for (const pid of pids) {
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        continue; // exited meanwhile
      }
      // pid (comm) state ppid … utime(14) stime(15): comm may hold spaces, so split after ')'.
      const close = stat.lastIndexOf(')');
      if (!stat.slice(stat.indexOf('(') + 1, close).startsWith('postgres')) continue;
      const f = stat.slice(close + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    }
    return ticks * this.#msPerTick;
  }

  static diff(a: CpuSample, b: CpuSample): CpuSample {
    return { node: b.node - a.node, redis: b.redis - a.redis, postgres: b.postgres - a.postgres };
  }

  static add(a: CpuSample, b: CpuSample): CpuSample {
    return { node: a.node + b.node, redis: a.redis + b.redis, postgres: a.postgres + b.postgres };
  }
}
