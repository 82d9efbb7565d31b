// The one log capture for tests: a pino logger whose lines are kept in memory, parsed.
import { pino, type Logger } from 'pino';

/** One parsed pino line. */
export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** A debug-level pino logger that keeps its lines (parsed) in memory. */
export function captureLogs(): { logger: Logger; lines: LogLine[]; text: () => string } {
  const raw: string[] = [];
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(s: string) {
        raw.push(s);
        lines.push(JSON.parse(s) as LogLine);
      },
    },
  );
  return { logger, lines, text: () => raw.join('') };
}

/** pino's numeric levels, for assertions on `LogLine.level`. */
export const ERROR = 50;
export const WARN = 40;
export const INFO = 30;
