// The configuration pieces this package owns: the schema name its tables live in, and the check
// that per-type settings name a known operation type.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { checkOperationTypeKeys, schemaNameSchema } from '../src/index.js';

describe('schemaNameSchema', () => {
  it('defaults to public and accepts what assertSchemaName accepts', () => {
    expect(schemaNameSchema.parse(undefined)).toBe('public');
    expect(schemaNameSchema.parse('ccat_test_1')).toBe('ccat_test_1');
    expect(schemaNameSchema.parse('a'.repeat(63))).toBe('a'.repeat(63));
  });

  it.each(['Bad-Schema', '1st', 'a'.repeat(64), '', 'public; DROP TABLE x'])('refuses %j', (name) => {
    const r = schemaNameSchema.safeParse(name);
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toBe(
      'must be a lower-case identifier [a-z_][a-z0-9_]*, at most 63 characters',
    );
  });
});

describe('checkOperationTypeKeys', () => {
  const schema = z
    .record(z.string(), z.number())
    .superRefine((record, ctx) => checkOperationTypeKeys(record, ['types'], ctx));

  it('accepts the known types', () => {
    expect(schema.safeParse({ unpack: 1, deletion: 2 }).success).toBe(true);
  });

  it('refuses an unknown type at its own path, naming the known ones', () => {
    const r = schema.safeParse({ unpack: 1, unpak: 2 });
    expect(r.error?.issues).toHaveLength(1);
    expect(r.error?.issues[0]).toMatchObject({ path: ['types', 'unpak'] });
    expect(r.error?.issues[0]?.message).toMatch(
      /^unknown operation type; expected one of raw_data_package, /,
    );
  });
});
