import { classifyError, type CCATDataOperationError } from '@ccat/errors';
import type { Logger } from 'pino';
import type { BeatReport, HeartbeatEmitterOptions, LostTask } from '../emitter-types.js';

type Hooks = Pick<HeartbeatEmitterOptions, 'onLost' | 'onBeat' | 'onError'>;

/**
 * The caller's callbacks, made safe to call from a timer: one that throws, or an async onLost that
 * rejects, is logged and never breaks the beat.
 */
export class EmitterHooks {
  readonly #log: Logger;
  readonly #hooks: Hooks;

  constructor(log: Logger, hooks: Hooks) {
    this.#log = log;
    this.#hooks = hooks;
  }

  beat(report: BeatReport): void {
    this.#call('onBeat', () => this.#hooks.onBeat?.(report));
  }

  error(error: CCATDataOperationError): void {
    this.#call('onError', () => this.#hooks.onError?.(error));
  }

  lost(lost: LostTask): void {
    const onLost = this.#hooks.onLost;
    if (onLost === undefined) return;
    this.#call('onLost', () => {
      const result = onLost(lost);
      if (result instanceof Promise) {
        void result.catch((e: unknown) =>
          this.#log.error({ err: classifyError(e), taskId: lost.taskId }, 'onLost handler failed'),
        );
      }
    });
  }

  #call(hook: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#log.error({ err: classifyError(e), hook }, 'heartbeat hook threw');
    }
  }
}
