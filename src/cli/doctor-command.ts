import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Config } from '../config.js';
import { type ConfinementProbe, probeConfinement } from '../executors/confinement.js';
import { pythonExecutable, scrubbedEnv } from '../python-env.js';

const run = promisify(execFile);

interface SelfTest {
  readonly confinement?: Record<string, unknown>;
  readonly checks?: Record<string, { refused: boolean; errno?: number; error?: string }>;
  readonly error?: string;
}

/** What `pyexec doctor --json` prints. */
export interface DoctorReport {
  readonly configured: 'landlock' | 'deployment';
  readonly probe: ConfinementProbe;
  /** A confined child tried what a kernel must not do (absent with `deployment` or a missing feature). */
  readonly selftest?: SelfTest;
  readonly ok: boolean;
}

/**
 * `pyexec doctor`: can kernels on this machine confine themselves as the config asks, and does the
 * confinement hold? It probes Landlock, then starts a child confined as a read-only kernel is and
 * has it try to connect to a TCP port this process listens on, read a file outside, read this
 * process's environ, signal it, and open Unix and raw sockets: each must be refused. Exit 0 when
 * the configured confinement is in force (or `deployment`, with a warning), 1 otherwise.
 */
export async function doctorCommand(opts: {
  config: Config;
  json: boolean;
  out?: NodeJS.WritableStream;
}): Promise<number> {
  const out = opts.out ?? process.stdout;
  const configured = opts.config.execution.confinement;
  const probe = await probeConfinement(opts.config.pyexec.python);
  let selftest: SelfTest | undefined;
  if (probe.missing.length === 0) selftest = await runSelfTest(opts.config);
  const held = selftest?.checks ? Object.values(selftest.checks).every((c) => c.refused) : false;
  const ok = configured === 'deployment' || (probe.missing.length === 0 && held);
  const report: DoctorReport = { configured, probe, ...(selftest ? { selftest } : {}), ok };
  if (opts.json) {
    out.write(`${JSON.stringify(report, null, 2)}\n`);
    return ok ? 0 : 1;
  }
  out.write(`execution.confinement: ${configured}\n`);
  out.write(`Landlock ABI: ${probe.landlock_abi} (pyexec needs ${probe.required_abi}), arch ${probe.arch}\n`);
  for (const m of probe.missing) out.write(`  missing: ${m}\n`);
  if (selftest?.error) out.write(`self-test: could not confine a child: ${selftest.error}\n`);
  for (const [name, c] of Object.entries(selftest?.checks ?? {})) {
    out.write(
      `  ${c.refused ? 'refused ' : 'ALLOWED '} ${name.replaceAll('_', ' ')}${c.error ? `  (${c.error})` : ''}\n`,
    );
  }
  if (configured === 'deployment') {
    out.write(
      'WARNING: pyexec confines nothing (execution.confinement: deployment): the deployment must isolate kernels ' +
        '(a CA gateway per mode, network policies; docs/security.md)\n',
    );
  } else if (ok) {
    out.write('ok: kernels on this machine confine themselves, and the confinement holds\n');
  } else {
    out.write(
      'NOT OK: kernels on this machine cannot be confined as configured; they will refuse to start (docs/security.md)\n',
    );
  }
  return ok ? 0 : 1;
}

async function runSelfTest(config: Config): Promise<SelfTest> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pyexec-doctor-'));
  const secret = path.join(dir, 'outside.txt');
  writeFileSync(secret, 'not for kernels\n', { mode: 0o600 });
  const server = createServer((s) => s.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  const port = address && typeof address === 'object' ? address.port : 0;
  try {
    const { stdout } = await run(
      pythonExecutable(config.pyexec.python),
      ['-m', 'pyexec_runtime.confine', 'selftest', String(port), secret, String(process.pid)],
      { env: scrubbedEnv({ PYEXEC_CONFINEMENT: 'landlock' }), timeout: 30_000 },
    ).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '{}' }));
    return JSON.parse(stdout || '{}') as SelfTest;
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
