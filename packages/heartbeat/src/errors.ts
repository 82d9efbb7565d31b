// The errors this package raises. They extend the CCAT hierarchy so classifyError passes them through.
import { ConfigurationError, OperationAbortedError, ValidationError } from '@ccat/errors';

/** A task id (sorted-set member) that is empty, too long or has characters outside the allowed set. */
export class InvalidTaskIdError extends ValidationError {
  static override readonly defaultCode: string = 'INVALID_TASK_ID';
}

/**
 * The reason a tracked task's AbortSignal fires: its heartbeat member was missing or past its deadline
 * at a beat. A report, not a verdict: Redis may have lost data. Check the fenced row; if it is still
 * yours, call `track` again. `context.reason` is `missing` or `expired`.
 */
export class HeartbeatLostError extends OperationAbortedError {
  static override readonly defaultCode: string = 'HEARTBEAT_LOST';
}

/** `track` on an emitter that is closing or closed. Retryable: the operation can run on another worker. */
export class HeartbeatClosedError extends OperationAbortedError {
  static override readonly defaultCode: string = 'HEARTBEAT_CLOSED';
}

/**
 * An exclusive health record (a worker's) is refreshed by another live process: two processes were
 * given one service name (`workerId`). `context` names the other process (`host`, `pid`, `lastSeen`).
 */
export class ServiceNameInUseError extends ConfigurationError {
  static override readonly defaultCode: string = 'SERVICE_NAME_IN_USE';

  /** The error for `serviceType`/`serviceName`, whose live record (`raw`, its JSON) is another process's. */
  static heldBy(serviceType: string, serviceName: string, raw: unknown): ServiceNameInUseError {
    let holder: Record<string, unknown> = {};
    try {
      holder = JSON.parse(String(raw)) as Record<string, unknown>;
    } catch {
      // not a record of ours: named by its key alone
    }
    const { host, pid, lastSeen, ttlMs } = holder;
    return new ServiceNameInUseError(
      `${serviceType} ${serviceName}: another live process (host ${String(host)}, pid ${String(pid)}) refreshes this name's health record; give each process its own name (a worker: workerId)`,
      { context: { serviceType, serviceName, host, pid, lastSeen, ttlMs } },
    );
  }
}
