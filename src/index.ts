// Public API of the creditgate package: re-exports only.

export { creditGate } from './middleware.js';
export type { ChargedRequest, CreditGateMiddleware, CreditGateOptions } from './middleware.js';
export { startSidecar } from './sidecar.js';
export type { RunningSidecar, SidecarOptions } from './sidecar.js';
export { CreditEngine, COUNTER_GRACE_MS } from './engine/credit-engine.js';
export type { ChargeDecision, ChargeRefusal, CostLine, PoolStatus, ResolvedAccount, UsageView } from './engine/credit-engine.js';
export { MemoryStore } from './store/memory-store.js';
export { RedisStore } from './store/redis-store.js';
export type { RedisStoreOptions } from './store/redis-store.js';
export { StoreError, StoreFullError } from './store/credit-store.js';
export type { AccountRecord, ChargeOutcome, CreditStore, PoolCharge, PoolKey, PoolUsage } from './store/credit-store.js';
export { loadConfigFile, loadConfigObject, loadConfigText } from './config/index.js';
export { ConfigError, formatIssue } from './config/config-error.js';
export type { ConfigIssue } from './config/config-error.js';
export type { ConfigInput } from './config/config-schema.js';
export { configJsonSchema } from './config/config-schema.js';
export type { CompiledConfig, CreditTypeDef, PlanDef, RouteDef } from './config/compiled-config.js';
export { cycleContaining, parseAnchor } from './domain/billing-cycle.js';
export type { BillingAnchor, BillingCycle } from './domain/billing-cycle.js';
