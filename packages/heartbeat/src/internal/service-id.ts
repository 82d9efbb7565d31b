import { z } from 'zod';

/** Service types name a kind of process (`worker`, `monitor`); no colon, it separates type and name in keys. */
export const serviceTypeSchema = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (1-64)');
/** Service names identify one instance (`cologne-worker-3`, `host:pid`). */
export const serviceNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.:@/+=-]{1,200}$/, 'letters, digits, _ . : @ / + = - (1-200)');

/** The registry field of a service. */
export const serviceField = (serviceType: string, serviceName: string): string =>
  `${serviceType}:${serviceName}`;
