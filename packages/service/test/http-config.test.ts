// The `http` section both services share: their own default port, the same bounds.
import { describe, expect, it } from 'vitest';
import { httpConfigSchema } from '../src/index.js';

describe('httpConfigSchema', () => {
  it("defaults to loopback and the service's own port", () => {
    expect(httpConfigSchema(9464).parse(undefined)).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(httpConfigSchema(9465).parse({ host: '0.0.0.0' })).toEqual({ host: '0.0.0.0', port: 9465 });
  });

  it('takes 0 (a free port) and null (off); refuses ports outside 0–65535 and unknown keys', () => {
    const http = httpConfigSchema(9464);
    expect(http.parse({ port: 0 }).port).toBe(0);
    expect(http.parse({ port: null }).port).toBeNull();
    for (const bad of [{ port: 65536 }, { port: -1 }, { port: 80.5 }, { prot: 80 }])
      expect(http.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
  });
});
