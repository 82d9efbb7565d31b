export {
  configFromEnv,
  envVarName,
  envVarPath,
  formatConfigIssues,
  mergeConfig,
  resolveConfig,
  type ConfigSources,
  type SafeParseSchema,
} from './config-sources.js';
export {
  classifyEnvVariable,
  editDistance,
  isNearKey,
  isServiceLinkVariable,
  schemaKeyPaths,
  type EnvVariableKind,
  type IgnoredVariables,
} from './env-keys.js';
export {
  readConfigSources,
  readSecretFiles,
  readServiceConfig,
  type ConfigLoader,
  type ConfigOutcome,
} from './read-config.js';
export {
  checkHeartbeatBounds,
  databaseConfigSchema,
  durationMsSchema,
  httpConfigSchema,
  keyPrefixSchema,
  logConfigSchema,
  MAX_TIMER_MS,
  optionalDurationMsSchema,
  POSTGRES_URL_RULE,
  REDIS_URL_RULE,
  redactUrl,
  SERVICE_ENV_ALIASES,
  SERVICE_SECRET_FILES,
  urlProblems,
  type DatabaseConfig,
  type LogConfig,
  type UrlRule,
} from './schemas.js';
export {
  createRedisConnection,
  describeRedis,
  redisConfigSchema,
  type RedisClientOptions,
  type RedisConfig,
  type RedisConnection,
} from './redis-connection.js';
export { createServiceLogger, MAX_LOG_LINE, MAX_LOG_STRING } from './logger.js';
export {
  bullErrorListener,
  closeRedis,
  ConnectionFaultLog,
  isConnectionError,
  REDIS_COMMAND_TIMEOUT_MS,
  watchRedis,
  type ServiceName,
} from './connection-faults.js';
export {
  databaseState,
  MIGRATE_HINT,
  readiness,
  redisState,
  waitForDatabase,
  waitForRedis,
  type DatabaseState,
  type MigrationCheck,
  type ReadinessSources,
} from './readiness.js';
export {
  migrateServiceDatabase,
  openServiceDatabase,
  type DatabasePoolOptions,
  type ServiceDatabase,
} from './database.js';
export { shutdownSteps } from './shutdown.js';
export { startServing, type ServingOptions } from './start-serving.js';
export {
  startHealthServer,
  type HealthCheck,
  type HealthEndpoints,
  type MetricsSource,
} from './health-server.js';
export { listenHttp, type HttpListenOptions, type HttpServer } from './http-listener.js';
export {
  FATAL_UNHANDLED_MESSAGE,
  reportUnhandled,
  runService,
  settlesWithin,
  type ServiceApp,
  type ServiceConfigBase,
  type ServiceContext,
  type ServiceDefinition,
  type StopBounds,
} from './run-service.js';
export { initialiseLabels, registerServiceMetrics, type ServiceMetricsIdentity } from './service-metrics.js';
