// A service as an admin query that can do without it sees it: connected, or why not. Shared by the
// CLI and the dashboard, so "PostgreSQL is down" reads the same in both.
import { classifyError } from '@ccat/errors';
import type { ServiceName } from '@ccat/service';

/** A service that could not be reached: `where` is already redacted, `reason` carries no URL. */
export interface Unavailable {
  readonly service: ServiceName;
  readonly where: string;
  readonly reason: string;
  /** The classified error code (`CONNECTION_REFUSED`, `DB_CONNECTION`…): what the advice depends on. */
  readonly code?: string;
}

/** A connected client, or why there is none. */
export type Source<T> =
  | { readonly ok: true; readonly client: T; readonly where: string }
  | { readonly ok: false; readonly unavailable: Unavailable };

/** What to report when `service` at `where` failed with `thrown` (classified: its message has no URL). */
export function unavailable(service: ServiceName, where: string, thrown: unknown): Unavailable {
  const e = classifyError(thrown);
  return { service, where, reason: `${e.message} [${e.code}]`, code: e.code };
}
