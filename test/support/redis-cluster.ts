/**
 * A real Redis Cluster for tests: three `redis-server --cluster-enabled yes` nodes on free loopback
 * ports (each with its own temporary folder and cluster config file, one shared password), joined
 * by `redis-cli --cluster create` with no replicas (every node a master of a third of the slots),
 * ready once every node reports `cluster_state:ok` and agrees on the slot map.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import type { RedisClusterSettings } from '../../src/redis/connection.js';
import { type LocalRedis, startLocalRedis } from '../../src/redis/redis-server.js';

const run = promisify(execFile);

export interface LocalRedisCluster {
  readonly nodes: readonly LocalRedis[];
  /** `pyexec.redis.cluster`: every node's URL, with the password. */
  readonly settings: RedisClusterSettings;
  /** The seed nodes, comma-separated (what `redisUrl` is for a cluster). */
  readonly url: string;
  readonly password: string;
  /** A plain connection to one node (CLUSTER commands, per-node reads). */
  node(i: number): Redis;
  stop(): Promise<void>;
}

export async function startLocalRedisCluster(count = 3): Promise<LocalRedisCluster> {
  const password = randomBytes(24).toString('hex');
  const nodes: LocalRedis[] = [];
  const plain: Redis[] = [];
  const stop = async () => {
    for (const c of plain) c.disconnect();
    await Promise.allSettled(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < count; i++) {
      nodes.push(
        await startLocalRedis({
          password,
          // Relative to the node's own --dir: one cluster config file per node.
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-node-timeout',
            '5000',
            '--masterauth',
            password,
          ],
        }),
      );
    }
    await run(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      // The password through the environment, not the command line (/proc/<pid>/cmdline).
      { env: { ...process.env, REDISCLI_AUTH: password }, timeout: 30_000 },
    );
    for (const n of nodes) {
      const c = new Redis({ host: '127.0.0.1', port: n.port, password, maxRetriesPerRequest: 1 });
      c.on('error', () => {});
      plain.push(c);
    }
    const end = Date.now() + 30_000;
    for (;;) {
      const infos = await Promise.all(plain.map((c) => c.cluster('INFO') as Promise<string>));
      const ok = infos.every((i) => /cluster_state:ok/.test(i) && /cluster_slots_assigned:16384/.test(i));
      const known = infos.every((i) => new RegExp(`cluster_known_nodes:${count}\\b`).test(i));
      if (ok && known) break;
      if (Date.now() > end) throw new Error(`the cluster did not reach cluster_state:ok: ${infos.join(' | ')}`);
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    nodes,
    settings: { nodes: nodes.map((n) => n.url) },
    url: nodes.map((n) => n.url).join(','),
    password,
    node: (i) => plain[i]!,
    stop,
  };
}
