import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from '../free-port.js';
import { signalGroup, spawnOwned, stopGroup } from '../process-group.js';
import { pythonExecutable, scrubbedEnv } from '../python-env.js';

export interface SoftIoc {
  readonly port: number;
  /** Channel Access settings a client needs to reach this IOC (and nothing else). */
  readonly env: Record<string, string>;
  /** The read-only endpoint (same PVs, READ access only, writes refused at the IOC), if started. */
  readonly readOnlyPort?: number;
  /** Channel Access settings for the read-only endpoint: what read-only kernels get. */
  readonly readOnlyEnv?: Record<string, string>;
  /** Reads a PV with a separate Channel Access client process (pyepics). */
  caget(pv: string): Promise<number | string | null>;
  /** Writes a PV with a separate Channel Access client process. */
  caput(pv: string, value: number): Promise<void>;
  stop(): Promise<void>;
}

/** Channel Access on one machine: loopback only, no auto address list, a per-IOC server port. */
export function caEnv(port: number): Record<string, string> {
  return {
    EPICS_CA_AUTO_ADDR_LIST: 'NO',
    EPICS_CA_ADDR_LIST: '127.0.0.1',
    EPICS_CA_SERVER_PORT: String(port),
    EPICS_CA_REPEATER_PORT: String(port + 1),
  };
}

const run = promisify(execFile);

/**
 * Starts the simulated accelerator (`pyexec_runtime.sim_ioc`, a caproto soft IOC) on a free
 * loopback port. Used by `pyexec up`, the demo and the tests.
 */
export async function startSoftIoc(
  options: {
    port?: number;
    python?: string;
    readOnlyEndpoint?: boolean;
    /** A file where the IOC appends every write request it receives (JSON lines), for tests. */
    writeLog?: string;
  } = {},
): Promise<SoftIoc> {
  const port = options.port ?? (await freePort());
  const readOnlyPort = options.readOnlyEndpoint ? await freePort() : undefined;
  const python = pythonExecutable(options.python);
  const dir = mkdtempSync(path.join(tmpdir(), 'pyexec-ioc-'));
  const ready = path.join(dir, 'ready');
  const env = caEnv(port);
  const args = ['-m', 'pyexec_runtime.sim_ioc', '--port', String(port), '--ready-file', ready];
  if (readOnlyPort) args.push('--read-only-port', String(readOnlyPort));
  if (options.writeLog) args.push('--write-log', options.writeLog);
  const child: ChildProcess = spawnOwned(python, args, { env: scrubbedEnv(env), stdio: ['ignore', 'ignore', 'pipe'] });
  // A CA repeater on this IOC's repeater port, so client libraries find one running instead of
  // trying (and failing, loudly, into every run's stderr) to spawn EPICS base's caRepeater.
  const repeater: ChildProcess = spawnOwned(python, ['-m', 'caproto.commandline.repeater', '-q'], {
    env: scrubbedEnv(env),
    stdio: 'ignore',
  });
  repeater.on('error', () => {});
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  for (let i = 0; ; i++) {
    try {
      readFileSync(ready);
      break;
    } catch {
      if (child.exitCode !== null || i > 200) {
        signalGroup(child, 'SIGKILL');
        signalGroup(repeater, 'SIGKILL');
        throw new Error(`soft IOC did not start on port ${port}: ${stderr.trim()}`);
      }
      await sleep(50);
    }
  }
  const client = async (script: string, ...args: string[]) =>
    (await run(python, ['-c', script, ...args], { env: scrubbedEnv(env), timeout: 20_000 })).stdout.trim();
  let stopped = false;
  return {
    port,
    env,
    ...(readOnlyPort
      ? {
          readOnlyPort,
          readOnlyEnv: { ...caEnv(readOnlyPort), EPICS_CA_REPEATER_PORT: env['EPICS_CA_REPEATER_PORT']! },
        }
      : {}),
    async caget(pv) {
      const out = await client('import sys, json, epics; print(json.dumps(epics.caget(sys.argv[1], timeout=5)))', pv);
      return JSON.parse(out.split('\n').at(-1) ?? 'null') as number | string | null;
    },
    async caput(pv, value) {
      const out = await client(
        'import sys, epics; print(epics.caput(sys.argv[1], float(sys.argv[2]), wait=True, timeout=5))',
        pv,
        String(value),
      );
      if (out.split('\n').at(-1) !== '1') throw new Error(`caput ${pv} failed: ${out}`);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all([stopGroup(child, 2000), stopGroup(repeater, 2000)]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
