import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from '../free-port.js';
import { signalGroup, spawnOwned, stopGroup } from '../process-group.js';

export interface LocalRedis {
  /** redis://:<password>@127.0.0.1:<port>: a secret (keep it out of logs: `safeUrl`). */
  readonly url: string;
  /** The URL without its password, for logs and messages. */
  readonly safeUrl: string;
  readonly password: string;
  readonly port: number;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its folder. Idempotent. */
  stop(): Promise<void>;
  /** Kills the server abruptly (tests of a lost connection). */
  kill(): void;
  /** Starts a stopped/killed server again on the same port (and data folder). */
  restart(): Promise<void>;
}

export interface LocalRedisOptions {
  port?: number;
  /** Append-only file persistence (jobs survive a restart). @defaultValue false */
  appendOnly?: boolean;
  /** Data folder; a temporary one (removed on stop) when unset. */
  dir?: string;
  binary?: string;
  /** The `requirepass` password. @defaultValue a random one (48 hex characters) */
  password?: string;
  /** More redis-server arguments (e.g. `--cluster-enabled yes` for a cluster node). */
  args?: readonly string[];
}

/**
 * Starts Debian's `redis-server` on a free loopback port with `maxmemory-policy noeviction` (BullMQ
 * requires it), for `pyexec up` without a configured Redis and for the test harness. It has a random
 * password, given to the server in a 0600 config file (not on its command line, where
 * /proc/<pid>/cmdline would show it).
 */
export async function startLocalRedis(options: LocalRedisOptions = {}): Promise<LocalRedis> {
  const port = options.port ?? (await freePort());
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(path.join(tmpdir(), 'pyexec-redis-'));
  const binary = options.binary ?? process.env['PYEXEC_REDIS_SERVER'] ?? 'redis-server';
  const password = options.password ?? randomBytes(24).toString('hex');
  const confFile = path.join(dir, 'redis-pyexec.conf');
  writeFileSync(confFile, `requirepass ${password}\n`, { mode: 0o600 });
  let child: ChildProcess | undefined;
  let stopped = false;

  const launch = async (): Promise<void> => {
    const args = [
      confFile,
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--dir',
      dir,
      '--appendonly',
      options.appendOnly ? 'yes' : 'no',
      '--appendfsync',
      options.appendOnly ? 'always' : 'everysec',
      '--maxmemory-policy',
      'noeviction',
      '--protected-mode',
      'yes',
      '--loglevel',
      'warning',
      ...(options.args ?? []),
    ];
    // Its own process group: a signal to pyexec's group must not take Redis away from a draining fleet.
    const proc = spawnOwned(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const spawnError = new Promise<never>((_, reject) =>
      proc.once('error', (err) =>
        reject(new Error(`cannot start ${binary}: ${err.message} (install it: apt-get install redis-server)`)),
      ),
    );
    const ready = (async () => {
      for (let i = 0; i < 100; i++) {
        if (proc.exitCode !== null) throw new Error(`redis-server exited: ${stderr.trim()}`);
        const client = new Redis({
          port,
          host: '127.0.0.1',
          password,
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        });
        client.on('error', () => {});
        try {
          await client.connect();
          await client.ping();
          client.disconnect();
          return;
        } catch {
          client.disconnect();
          await sleep(50);
        }
      }
      throw new Error(`redis-server did not answer on port ${port}: ${stderr.trim()}`);
    })();
    try {
      await Promise.race([ready, spawnError]);
    } catch (err) {
      signalGroup(proc, 'SIGKILL');
      throw err;
    }
  };

  await launch();
  const exited = () =>
    new Promise<void>((resolve) => {
      if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
    });

  return {
    url: `redis://:${password}@127.0.0.1:${port}`,
    safeUrl: `redis://127.0.0.1:${port}`,
    password,
    port,
    kill() {
      if (child) signalGroup(child, 'SIGKILL');
    },
    async restart() {
      if (child) signalGroup(child, 'SIGKILL');
      await exited();
      await launch();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child) await stopGroup(child, 3000);
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
