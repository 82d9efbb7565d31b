import { pino, type Logger } from 'pino';

/** The logger used when the caller brings none: discards everything. One per resource, no global. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
