// Runs the demo's worker and monitor processes the way systemd would: real child processes, their
// logs in files, a worker that dies (an injected crash, a chaos SIGKILL) restarted after a moment.
// Only processes started here are ever signalled, by their PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One supervised process; `child` is replaced when it is restarted. */
export interface Managed {
  readonly name: string;
  readonly kind: 'worker' | 'monitor';
  child: ChildProcess;
  restarts: number;
  stopped: boolean;
  frozen: boolean;
  /** Set when the supervisor itself signals the process to end (a chaos kill, a stop). */
  endRequested: boolean;
}

/** One exit of a managed process, as the supervisor saw it. */
export interface ProcessExit {
  readonly name: string;
  readonly kind: 'worker' | 'monitor';
  readonly pid: number | undefined;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** ms since the epoch. */
  readonly at: number;
  /** The supervisor asked for it: a chaos SIGKILL or a SIGTERM from stop()/close(). */
  readonly requested: boolean;
  /** stop() had to follow its SIGTERM with a SIGKILL after its timeout. */
  readonly forced: boolean;
}

/** Where logs and config files go, what to run, and how long to wait before a restart (ms). */
export interface SupervisorOptions {
  readonly dir: string;
  readonly workerScript: string;
  readonly monitorScript: string;
  readonly restartDelayMs: number;
  /** The children's whole environment (see `childEnvironment`): nothing of the caller's is added. */
  readonly env: Readonly<Record<string, string>>;
  readonly onEvent?: (text: string) => void;
}

/**
 * Starts, watches and restarts the demo's worker and monitor processes; signals only the processes
 * it started, by PID. Every exit is recorded in {@link Supervisor.exits}, with whether the supervisor
 * asked for it.
 */
export class Supervisor {
  readonly processes: Managed[] = [];
  /** Every exit of every managed process, in order. */
  readonly exits: ProcessExit[] = [];
  readonly #forced = new Set<ChildProcess>();
  readonly #options: SupervisorOptions;
  #closing = false;

  constructor(options: SupervisorOptions) {
    this.#options = options;
  }

  get restarts(): number {
    return this.processes.reduce((n, p) => n + p.restarts, 0);
  }

  get alive(): number {
    return this.processes.filter((p) => p.child.exitCode === null && p.child.signalCode === null).length;
  }

  async start(name: string, kind: 'worker' | 'monitor', config: object): Promise<Managed> {
    const file = join(this.#options.dir, `${name}.json`);
    await writeFile(file, JSON.stringify(config, null, 2));
    const m: Managed = {
      name,
      kind,
      child: this.#spawn(name, kind, file),
      restarts: 0,
      stopped: false,
      frozen: false,
      endRequested: false,
    };
    this.#watch(m, file);
    this.processes.push(m);
    return m;
  }

  #spawn(name: string, kind: 'worker' | 'monitor', file: string): ChildProcess {
    const log = createWriteStream(join(this.#options.dir, `${name}.log`), { flags: 'a' });
    const child = spawn(
      process.execPath,
      [kind === 'worker' ? this.#options.workerScript : this.#options.monitorScript, '--config', file],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...this.#options.env },
      },
    );
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    return child;
  }

  #watch(m: Managed, file: string): void {
    const child = m.child;
    child.once('exit', (code, signal) => {
      this.exits.push({
        name: m.name,
        kind: m.kind,
        pid: child.pid,
        code,
        signal,
        at: Date.now(),
        requested: m.endRequested,
        forced: this.#forced.has(child),
      });
      m.endRequested = false;
      if (this.#closing || m.stopped) return;
      if (code === 2) {
        // Exit 2 is a configuration error: restarting cannot fix it (see its log).
        m.stopped = true;
        this.#options.onEvent?.(
          `${m.name} refused its configuration (exit 2); not restarting it, see ${m.name}.log`,
        );
        return;
      }
      this.#options.onEvent?.(`${m.name} exited (${signal ?? code}); restarting`);
      setTimeout(() => {
        if (this.#closing || m.stopped) return;
        m.child = this.#spawn(m.name, m.kind, file);
        m.restarts++;
        m.frozen = false;
        this.#watch(m, file);
      }, this.#options.restartDelayMs);
    });
  }

  #pick(kind: 'worker' | 'monitor'): Managed | undefined {
    const candidates = this.processes.filter(
      (p) => p.kind === kind && !p.frozen && p.child.exitCode === null && p.child.signalCode === null,
    );
    return candidates[Math.floor(Math.random() * candidates.length)];
  }

  /** SIGKILL to a random running worker (it is restarted). */
  killRandomWorker(): string | undefined {
    const m = this.#pick('worker');
    if (!m) return undefined;
    m.endRequested = true;
    m.child.kill('SIGKILL');
    return m.name;
  }

  /** SIGSTOP to a random running worker, SIGCONT after `ms`. */
  freezeRandomWorker(ms: number): string | undefined {
    const m = this.#pick('worker');
    if (!m) return undefined;
    const child = m.child;
    m.frozen = true;
    child.kill('SIGSTOP');
    setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGCONT');
      m.frozen = false;
    }, ms);
    return m.name;
  }

  /** SIGTERM to every process of a kind (graceful), SIGKILL after `timeoutMs`. */
  async stop(kind: 'worker' | 'monitor', timeoutMs: number): Promise<void> {
    const running = this.processes.filter((p) => p.kind === kind);
    await Promise.all(
      running.map(async (m) => {
        m.stopped = true;
        const c = m.child;
        if (c.exitCode !== null || c.signalCode !== null) return;
        const exited = new Promise((r) => c.once('exit', r));
        m.endRequested = true;
        c.kill('SIGCONT');
        c.kill('SIGTERM');
        const t = setTimeout(() => {
          this.#forced.add(c);
          c.kill('SIGKILL');
        }, timeoutMs);
        await exited;
        clearTimeout(t);
      }),
    );
  }

  async close(timeoutMs: number): Promise<void> {
    this.#closing = true;
    await this.stop('worker', timeoutMs);
    await this.stop('monitor', timeoutMs);
  }
}
