export { CCATDataOperationError, isCcatError, type CcatErrorClass, type CcatErrorOptions } from './base.js';
export * from './errors.js';
export { CLASSIFIER_RULE_KEYS, classifyError, isRetryable } from './classify.js';
export * from './backoff.js';
export { sleep } from './sleep.js';
export { formatDuration } from './duration.js';
export { serializeError, type SerializedError, type SerializeOptions } from './serialize.js';
export { deserializeError, type DeserializeOptions } from './deserialize.js';
export {
  describe as describeThrown,
  safeGet,
  safeString,
  toSafeJson,
  truncate,
  type JsonValue,
  type SafeJsonLimits,
} from './internal/safe.js';
export { describeConfigValue } from './config-value.js';
export { REPLACEMENT_CHARACTER, storableJsonText, storableText } from './storable.js';
export {
  DEFAULT_SECRET_PATTERNS,
  REDACTED,
  createRedactor,
  MAX_KEY_LENGTH,
  boundedKey,
  isArgumentsKey,
  isSecretKey,
  redactJson,
  redactSecrets,
  redactValue,
  urlSecrets,
  type RedactValueOptions,
  type Redactor,
  type RedactorOptions,
} from './redact.js';
export * from './catalogue.js';
export * from './codes.js';
