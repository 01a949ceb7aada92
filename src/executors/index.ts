export {
  type ConfinementProbe,
  type ConfinementStatus,
  checkConfinement,
  describeConfinement,
  probeConfinement,
} from './confinement.js';
export type { ExecutionMode, ExecutionOutcome, ExecutionTask, Executor } from './executor.js';
export { type CreateExecutorsDeps, createExecutors, type ExecutorSet, loadLimits } from './factory.js';
export { JupyterExecutor, type JupyterExecutorOptions, type KernelLimits } from './jupyter-executor.js';
export { type JupyterServerRef, type SpawnedJupyterServer, spawnJupyterServer } from './jupyter-server.js';
export { type KernelLease, KernelPool, type KernelPoolOptions, type PoolStats } from './kernel-pool.js';
export { LocalExecutor, type LocalExecutorOptions } from './local-executor.js';
export { type KernelModes, KernelPoolSettings, kernelModes, kernelPoolSettings } from './pool-config.js';
