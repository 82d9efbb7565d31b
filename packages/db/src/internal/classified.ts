import { classifyError } from '@ccat/errors';

/** Runs a database call; whatever it throws comes out classified (@ccat/errors, by SQLSTATE). */
export async function classified<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw classifyError(e);
  }
}
