import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * The long-lived children pyexec starts and owns: the private redis-server, the soft IOC and its
 * CA repeater, Jupyter servers. Each runs in a process group of its own, so a signal sent to
 * pyexec's group (Ctrl-C in a terminal, `timeout`, a service manager) does not reach it: pyexec
 * stops its children itself, in order, after its workers have drained (the fleet still needs
 * Redis while it drains).
 *
 * None outlives pyexec: when this process exits, by any road that runs exit handlers (a second
 * Ctrl-C, a crash, process.exit), every child still running gets SIGKILL, group and all; and where
 * util-linux's `setpriv` exists, each child also gets SIGTERM from the kernel when pyexec dies
 * without running them (SIGKILL, the OOM killer).
 */
const owned = new Set<ChildProcess>();
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

function killOwned(): void {
  for (const child of owned) signalGroup(child, 'SIGKILL');
}

/** spawn(), in a new process group, with a parent-death signal, killed when this process exits. */
export function spawnOwned(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const [cmd, argv] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'TERM', '--', command, ...args]] : [command, [...args]];
  const child = spawn(cmd, argv, { ...options, detached: true });
  if (owned.size === 0) process.on('exit', killOwned);
  owned.add(child);
  child.once('exit', () => {
    owned.delete(child);
    if (owned.size === 0) process.off('exit', killOwned);
  });
  return child;
}

/** Sends `signal` to the child's whole process group (the child alone if that fails); no-op once it exited. */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // Gone already.
    }
  }
}

/** SIGTERM to the child's group, SIGKILL after `graceMs`; resolves once it exited. */
export async function stopGroup(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalGroup(child, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
