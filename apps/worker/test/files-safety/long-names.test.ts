// Adversary finding 9: a name that is a legal file name (<= 255 bytes) but leaves no room for the
// `.ccat-partial-<n>` suffix could never be produced: the operation failed with PATH_INVALID at the
// partial name, after work. It is now refused up front by containedPath, with a clear message.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { seedRawPackages } from '@ccat/db/testing';
import { describe, expect } from 'vitest';
import { workerTest as it } from '../harness.js';

describe('adversary: long names', () => {
  it('a 240-byte package name is refused before any work: its partial name would exceed NAME_MAX', async ({
    harness,
  }) => {
    const h = await harness('adv_longname');
    await seedRawPackages(h.database.db, h.locations, {
      packages: 1,
      filesPerPackage: 1,
      minFileBytes: 10,
      maxFileBytes: 10,
      source: 'cha/primecam-raw',
      buffer: 'cha/cha-buffer',
      prefix: 'p'.repeat(235),
    });
    await h.runUntilQuiet();
    const r = await h.database.db
      .selectFrom('raw_data_packages')
      .select(['name', 'relative_path', 'status', 'last_error_code', 'last_error_message'])
      .executeTakeFirstOrThrow();
    // raw/<240>.tar is a valid path (its last component is 244 bytes), but its partial is not.
    expect(r.relative_path.split('/').at(-1)!.length).toBeLessThanOrEqual(255);
    expect({ status: r.status, code: r.last_error_code }).toEqual({
      status: 'failed',
      code: 'VALIDATION_FAILED',
    });
    expect(r.last_error_message).toMatch(/NAME_MAX/);
    // Refused before any work: nothing was written at the buffer.
    expect(await h.partials()).toEqual([]);
    const buffer = h.locations.byName.get('cha/cha-buffer')!.root;
    expect(await readdir(join(buffer, 'raw')).catch(() => [])).toEqual([]);
  });
});
