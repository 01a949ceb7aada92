import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';
import { pythonExecutable, scrubbedEnv } from '../python-env.js';

const run = promisify(execFile);

/** What `python -m pyexec_runtime.confine probe` says of this machine (confine.py `probe`). */
export interface ConfinementProbe {
  readonly landlock_abi: number;
  readonly required_abi: number;
  readonly tcp_rules: boolean;
  readonly scoped_signals_and_abstract_sockets: boolean;
  readonly seccomp: boolean;
  readonly arch: string;
  /** What the kernel policy needs and this machine lacks; empty when kernels can confine themselves. */
  readonly missing: readonly string[];
}

/** The confinement an execution process works under: in /readyz, in presence, in `pyexec status`. */
export interface ConfinementStatus {
  /** `execution.confinement`. */
  readonly method: 'landlock' | 'deployment';
  /** The Landlock ABI of this machine (null when not probed: every kernel runs elsewhere). */
  readonly landlockAbi: number | null;
  /** Whether kernels or runners of this process run on this machine (and were checked here). */
  readonly checkedHere: boolean;
}

/** Runs the probe with the project's Python. */
export async function probeConfinement(python?: string): Promise<ConfinementProbe> {
  const py = pythonExecutable(python);
  const { stdout } = await run(py, ['-m', 'pyexec_runtime.confine', 'probe'], { env: scrubbedEnv(), timeout: 30_000 });
  return JSON.parse(stdout) as ConfinementProbe;
}

/**
 * Checks, before any kernel or runner starts, that they can confine themselves as the config asks:
 * with `landlock`, a machine that lacks what the policy needs stops the process with a ConfigError
 * naming the missing features (fail closed); with `deployment`, a loud warning says that pyexec
 * confines nothing and the deployment must. `local` is whether kernels or runners run on this
 * machine (spawned Jupyter servers, the local method); remote kernels check themselves and report
 * it in every run, and the executor refuses a kernel that reports another confinement.
 */
export async function checkConfinement(config: Config, local: boolean, logger: Logger): Promise<ConfinementStatus> {
  const method = config.execution.confinement;
  if (!local) return { method, landlockAbi: null, checkedHere: false };
  let probe: ConfinementProbe;
  try {
    probe = await probeConfinement(config.pyexec.python);
  } catch (err) {
    if (method === 'deployment') {
      logger.warn({ err: (err as Error).message }, 'cannot probe Landlock on this machine');
      return { method, landlockAbi: null, checkedHere: true };
    }
    throw new ConfigError(
      `execution.confinement: landlock: cannot probe this machine (${(err as Error).message}); kernels would not start`,
      { cause: err },
    );
  }
  if (method === 'deployment') {
    logger.warn(
      { landlockAbi: probe.landlock_abi },
      'execution.confinement is deployment: pyexec does NOT confine kernels or local runs; the deployment must isolate them (a CA gateway per mode, network policies; docs/security.md)',
    );
  } else if (probe.missing.length > 0) {
    throw new ConfigError(
      `execution.confinement: landlock: this machine cannot confine kernels: it lacks ${probe.missing.join('; ')}. ` +
        'Run on Linux >= 6.12 with Landlock enabled, or set execution.confinement: deployment where the deployment ' +
        'isolates kernels itself (docs/security.md).',
    );
  }
  return { method, landlockAbi: probe.landlock_abi, checkedHere: true };
}

/** One line for people: `landlock (ABI 7)`, `deployment (NOT confined by pyexec)`. */
export function describeConfinement(status: ConfinementStatus): string {
  if (status.method === 'deployment') return 'deployment (NOT confined by pyexec: the deployment must isolate kernels)';
  return status.landlockAbi === null ? 'landlock (checked by each kernel)' : `landlock (ABI ${status.landlockAbi})`;
}
