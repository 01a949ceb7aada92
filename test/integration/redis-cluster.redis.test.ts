/**
 * The pipeline on a real Redis Cluster: three `redis-server --cluster-enabled yes` nodes on
 * loopback joined by `redis-cli --cluster create` (test/support/redis-cluster.ts), a fleet and a
 * client configured with `pyexec.redis.cluster`, the mock generator, the real analyzer and the
 * local executor (a real Python process). A cluster refuses a command or script whose keys are in
 * more than one slot (CROSSSLOT), and answers MOVED for a key another node serves: a request that
 * goes through every stage proves that every BullMQ queue, every store script and every plain
 * command of the fleet keeps to its slot, and the keys are then found where the slot map says.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Cluster } from 'ioredis';
import { type ProducerApi, startProducerApi } from '../../src/api/producer-server.js';
import { ApproverClient } from '../../src/approval/http/client.js';
import { type ApproverApi, startApproverApi } from '../../src/approval/http/server.js';
import { createToken } from '../../src/approval/tokens.js';
import { statusCommand } from '../../src/cli/status-command.js';
import { PyexecHttpClient } from '../../src/client/http-client.js';
import { PyexecClient } from '../../src/client/pyexec-client.js';
import { type Config, parseConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { LeaseStore } from '../../src/executors/kernel-leases.js';
import { freePort } from '../../src/free-port.js';
import type { CodeGenerator, GenerationRequest } from '../../src/generators/code-generator.js';
import { silentLogger } from '../../src/logger.js';
import { STAGES } from '../../src/queues/queue-name.js';
import { createRedis, keyPrefix, scanKeys, waitReady } from '../../src/redis/connection.js';
import { RequestStore } from '../../src/store/request-store.js';
import { Fleet } from '../../src/workers/fleet.js';
import { eventually, sampleRequest, testConfig } from '../support/harness.js';
import { type LocalRedisCluster, startLocalRedisCluster } from '../support/redis-cluster.js';

// The program by the request's folder name: plain code, run at once; or code that names a Channel
// Access write (never executed: the branch is dead), held by the `epics_writes` approval mode.
const PLAIN = "results = {'status': 'success', 'value': 42}";
const WRITE = "if False:\n    from epics import caput\n    caput('DEVICE:PV:SETPOINT', 1.0)\nresults = {'value': 7}";
/** Runs until cancelled. */
const SLOW = 'import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.1)\nresults = {}';
const PROGRAMS: Record<string, string> = { held_run: WRITE, slow_run: SLOW };
const generator: CodeGenerator = {
  name: 'by-folder',
  generate: async (r: GenerationRequest) => ({
    code: PROGRAMS[r.request.execution_folder_name] ?? PLAIN,
    generator: 'by-folder',
  }),
};

let cluster: LocalRedisCluster;
let config: Config & { cleanup(): void };
let fleet: Fleet;
let client: PyexecClient;
let prefix: string;
let approverApi: ApproverApi;
let producerApi: ProducerApi;
const approver = createToken('alice', 'approver');
const producer = createToken('agent', 'producer');

before(async () => {
  cluster = await startLocalRedisCluster(3);
  config = testConfig({
    approval: {
      global_mode: 'selective',
      capabilities: { python_execution: { enabled: true, mode: 'epics_writes' } },
    },
    pyexec: { redis: { cluster: cluster.settings }, approver: { tokens: [approver.entry, producer.entry] } },
  });
  prefix = keyPrefix(config.pyexec.redis.prefix);
  fleet = await Fleet.start({ config, redisUrl: cluster.url, logger: silentLogger(), metricsPort: null, generator });
  client = await PyexecClient.connect({ redisUrl: cluster.url, config });
  approverApi = await startApproverApi({ config, redisUrl: cluster.url, port: 0, logger: silentLogger() });
  producerApi = await startProducerApi({ config, redisUrl: cluster.url, port: 0, logger: silentLogger() });
});

after(async () => {
  await approverApi?.close();
  await producerApi?.close();
  await fleet?.close();
  await client?.close();
  config?.cleanup();
  await cluster?.stop();
});

async function redisGet(key: string): Promise<string | null> {
  const slot = Number(await cluster.node(0).cluster('KEYSLOT', key));
  return cluster.node(await ownerOf(slot)).get(key);
}

/** The index of the node that serves `slot` (CLUSTER SLOTS). */
async function ownerOf(slot: number): Promise<number> {
  const ranges = await cluster.node(0).cluster('SLOTS');
  const hit = ranges.find(([from, to]) => slot >= from && slot <= to);
  assert.ok(hit?.[2], `no node serves slot ${slot}`);
  const port = hit[2][1];
  return cluster.nodes.findIndex((n) => n.port === port);
}

describe('on a Redis Cluster of three masters', () => {
  it('the connections are cluster connections, and the cluster refuses keys of two slots', async () => {
    const redis = createRedis(cluster.url, 'producer', {}, cluster.settings);
    try {
      assert.ok(redis instanceof Cluster);
      await redis.connect();
      // Two keys that hash to different slots: a real cluster refuses the script.
      const a = Number(await cluster.node(0).cluster('KEYSLOT', 'a'));
      const b = Number(await cluster.node(0).cluster('KEYSLOT', 'b'));
      assert.notEqual(a, b);
      await assert.rejects(redis.eval('return 1', 2, 'a', 'b'), /CROSSSLOT/);
    } finally {
      redis.disconnect();
    }
  });

  it('runs a request through generation, analysis and execution (a real Python run) to its result', async () => {
    const { requestId } = await client.submit(sampleRequest());
    const res = await client.wait(requestId, { timeoutMs: 60_000 });
    assert.equal(res.kind, 'finished', JSON.stringify(res));
    if (res.kind !== 'finished') return;
    assert.equal(res.response.status, 'succeeded', JSON.stringify(res.response));
    assert.equal((res.response.results as { value: number }).value, 42);
    assert.equal(res.response.generated_code, PLAIN);

    // The record as the store's scripts wrote it (SUBMIT: digest and submit time; END: terminal and
    // response; STATUS: the events of each stage), read back through the cluster.
    const snap = await client.status(requestId);
    assert.equal(snap?.status, 'succeeded');
    const events = (await client.store.eventsAfter(requestId, '0', 100)).flatMap((e) => [e.type, e.status ?? '']);
    for (const s of ['submitted', 'generating', 'analyzing', 'executing', 'succeeded']) {
      assert.ok(events.includes(s), `no ${s} event in ${events.join(', ')}`);
    }
  });

  it('holds a request whose code writes, and runs it once approved', async () => {
    const { requestId } = await client.submit(sampleRequest({ execution_folder_name: 'held_run' }));
    const res = await client.wait(requestId, { timeoutMs: 60_000, returnOnApproval: true });
    assert.equal(res.kind, 'approval_required', JSON.stringify(res));
    if (res.kind !== 'approval_required') return;
    const held = await fleet.approvals.listHeld();
    assert.deepEqual(
      held.map((h) => h.holdJobId),
      [res.holdJobId],
    );
    await fleet.approvals.decide(res.holdJobId, { decision: 'approved', approver: 'alice' });
    const done = await client.wait(requestId, { timeoutMs: 60_000 });
    assert.equal(done.kind, 'finished', JSON.stringify(done));
    if (done.kind !== 'finished') return;
    assert.equal(done.response.status, 'succeeded', JSON.stringify(done.response));
    assert.equal((done.response.results as { value: number }).value, 7);
    assert.equal((done.response.approval as { approver: string }).approver, 'alice');
  });

  it('over HTTP: the producer API submits and waits, the approver API approves (their connections on the cluster)', async () => {
    const http = new PyexecHttpClient({ url: producerApi.url, token: producer.token });
    const { requestId } = await http.submit(sampleRequest({ execution_folder_name: 'held_run' }));
    const res = await http.wait(requestId, { timeoutMs: 60_000, returnOnApproval: true });
    assert.equal(res.kind, 'approval_required', JSON.stringify(res));
    const approvers = new ApproverClient({ url: approverApi.url, token: approver.token, client: 'api' });
    const shown = await approvers.show(requestId);
    await approvers.approve(shown.holdJobId, { codeSha256: shown.codeSha256, analysisSha256: shown.analysisSha256 });
    const done = await http.wait(requestId, { timeoutMs: 60_000 });
    assert.equal(done.kind, 'finished', JSON.stringify(done));
    if (done.kind === 'finished') {
      assert.equal(done.response.status, 'succeeded', JSON.stringify(done.response));
      assert.equal((done.response.approval as { approver: string }).approver, 'alice');
    }
  });

  it('cancels a running request', async () => {
    const { requestId } = await client.submit(sampleRequest({ execution_folder_name: 'slow_run' }));
    const seen: string[] = [];
    const waiting = client.wait(requestId, { timeoutMs: 60_000, onStdout: (t) => seen.push(t) });
    await eventually(async () => (seen.join('').includes('3') ? true : undefined), 30_000, 'output of the run');
    assert.equal(await client.cancel(requestId), true);
    const res = await waiting;
    assert.equal(res.kind, 'finished', JSON.stringify(res));
    if (res.kind === 'finished') assert.equal(res.response.status, 'cancelled', JSON.stringify(res.response));
  });

  it('`pyexec status` finds the workers of every stage and their capacity', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    assert.equal(await statusCommand(undefined, { json: true, config, redisUrl: cluster.url, out }), 0);
    const stages = (JSON.parse(text) as { stages: { stage: string; workers: number; capacity: number }[] }).stages;
    assert.deepEqual(
      stages.map((s) => s.stage),
      [...STAGES],
    );
    for (const s of stages) assert.ok(s.workers >= 1 && s.capacity >= 1, JSON.stringify(s));
  });

  it('the kernel pool scripts: concurrent claims lease each idle kernel once, skipping a down server', async () => {
    const redis = createRedis(cluster.url, 'worker', {}, cluster.settings);
    try {
      const store = new LeaseStore(redis, prefix, 'cluster-test');
      const up = await Promise.all([1, 2, 3].map((i) => store.register('http://up:8888', `k${i}`, 'read_only')));
      await store.register('http://down:8888', 'k4', 'read_only');
      await store.markDown('http://down:8888', 60_000);
      const claims = await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.claim('read_only', `lease-${i}`, 'test', 60_000)),
      );
      const won = claims.filter((c): c is string => c !== null);
      assert.deepEqual([...won].sort(), [...up].sort(), `claims: ${JSON.stringify(claims)}`);
      for (const k of up) assert.equal((await store.get(k))?.state, 'leased');
      // The down server's kernel stays idle, in the list, for when the server is back.
      assert.equal(await store.claim('read_only', 'lease-x', 'test', 60_000), null);
      assert.equal((await store.all()).find((r) => r.kernelId === 'k4')?.state, 'idle');
      await store.destroy();
      assert.deepEqual(await scanKeys(redis, `${prefix}:kpool:cluster-test:*`), []);
    } finally {
      redis.disconnect();
    }
  });

  it('concurrent submits of different requests on one thread: each recorded once, the thread names one of them', async () => {
    const threadId = `thread-${Date.now()}`;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        client.store.submit({
          requestId: `${threadId}-r${i}`,
          threadId,
          digest: `d${i}`,
          requestJson: '{}',
          ttlSeconds: 600,
        }),
      ),
    );
    assert.ok(
      results.every((r) => r.created && !r.conflict),
      JSON.stringify(results),
    );
    const last = await redisGet(client.store.threadKey(threadId));
    assert.ok(
      results.some((r) => r.requestId === last),
      `the thread names ${last}`,
    );
  });

  it('a submit whose thread moves between its read and its script reads again, and judges by the new request', async () => {
    const threadId = `moved-${Date.now()}`;
    const store = new RequestStore(createRedis(cluster.url, 'worker', {}, cluster.settings), prefix);
    const conn = (store as unknown as { redis: { get(k: string): Promise<string | null> } }).redis;
    try {
      const first = await store.submit({
        requestId: `${threadId}-a`,
        threadId,
        digest: 'A',
        requestJson: '{}',
        ttlSeconds: 600,
      });
      assert.equal(first.created, true);
      // Another producer records request b (digest B) on the thread right after this submit's read.
      const get = conn.get.bind(conn);
      let reads = 0;
      conn.get = async (k: string) => {
        const v = await get(k);
        if (++reads === 1) {
          await client.store.submit({
            requestId: `${threadId}-b`,
            threadId,
            digest: 'B',
            requestJson: '{}',
            ttlSeconds: 600,
          });
        }
        return v;
      };
      // The same request as b: the script refuses the stale read, the second read finds b, same digest.
      const again = await store.submit({
        requestId: `${threadId}-c`,
        threadId,
        digest: 'B',
        requestJson: '{}',
        ttlSeconds: 600,
      });
      assert.equal(reads, 2);
      assert.deepEqual(again, { requestId: `${threadId}-b`, created: false, conflict: false });
      assert.equal(await client.store.get(`${threadId}-c`), null);
    } finally {
      (conn as unknown as { disconnect(): void }).disconnect();
    }
  });

  it('keeps every key of the fleet in the slot of its prefix, on the node that serves it', async () => {
    const slot = Number(await cluster.node(0).cluster('KEYSLOT', `${prefix}:anything`));
    const owner = await ownerOf(slot);
    const perNode = await Promise.all(cluster.nodes.map((_, i) => scanKeys(cluster.node(i), `${prefix}:*`)));
    const keys = perNode[owner]!;
    // Request records, event streams, the thread pointer, the index, BullMQ's queues, presence.
    for (const pattern of [':request:', ':events:', ':thread:', ':requests', ':generation:', ':execution:']) {
      assert.ok(
        keys.some((k) => k.includes(pattern)),
        `no ${pattern} key on node ${owner}: ${keys.join(' ')}`,
      );
    }
    perNode.forEach((k, i) => {
      if (i !== owner) assert.deepEqual(k, [], `keys of the fleet on node ${i}, which does not serve slot ${slot}`);
    });
    for (const k of keys.slice(0, 50)) {
      assert.equal(Number(await cluster.node(owner).cluster('KEYSLOT', k)), slot, k);
    }
  });
});

describe('a misconfigured cluster', () => {
  it('with no reachable node: the client fails at once, naming the seed nodes and not the password', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const started = Date.now();
    await assert.rejects(
      PyexecClient.connect({ cluster: { nodes: [`redis://:s3cret@127.0.0.1:${a}`, `redis://127.0.0.1:${b}`] } }),
      (err: Error) => {
        assert.match(
          err.message,
          new RegExp(`Redis Cluster unreachable \\(seed nodes 127\\.0\\.0\\.1:${a}, 127\\.0\\.0\\.1:${b}\\)`),
        );
        assert.doesNotMatch(err.message, /s3cret/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 10_000, 'it did not fail fast');
  });

  it('a producer connection that was up rides out the loss of every node (it reconnects once they are back)', async () => {
    const own = await startLocalRedisCluster(3);
    const redis = createRedis(own.url, 'producer', {}, own.settings);
    try {
      await waitReady(redis);
      for (const n of own.nodes) n.kill();
      await eventually(async () => ((await redis.ping().catch(() => 'down')) === 'down' ? true : undefined));
      for (const n of own.nodes) await n.restart();
      await eventually(async () =>
        (await redis.set(`${prefix}:back`, '1').catch(() => null)) === 'OK' ? true : undefined,
      );
    } finally {
      redis.disconnect();
      await own.stop();
    }
  });

  it('PYEXEC_REDIS_CLUSTER_NODES sets the seed nodes (the deploy configs leave `url`, from an unset PYEXEC_REDIS_URL, empty)', () => {
    const c = parseConfig(
      // The deploy configs' url, a reference to PYEXEC_REDIS_URL (spelled so that lint does not take it for a template).
      { pyexec: { redis: { url: `$${'{'}PYEXEC_REDIS_URL}` } } },
      { PYEXEC_REDIS_CLUSTER_NODES: 'redis://:pw@redis-0:6379, redis://:pw@redis-1:6379' },
    );
    assert.deepEqual(c.pyexec.redis.cluster, { nodes: ['redis://:pw@redis-0:6379', 'redis://:pw@redis-1:6379'] });
    assert.equal(c.pyexec.redis.url, undefined);
  });

  it('a cluster and a url at once, or a node that is not a Redis URL, is refused with the key', () => {
    assert.throws(
      () =>
        testConfig({
          pyexec: { redis: { url: 'redis://127.0.0.1:6379', cluster: { nodes: ['redis://127.0.0.1:7000'] } } },
        }),
      (err: Error) =>
        err instanceof ConfigError &&
        /give pyexec\.redis\.url \(one server\) or pyexec\.redis\.cluster, not both\s+→ at pyexec\.redis\.cluster/.test(
          err.message,
        ),
    );
    assert.throws(
      () => testConfig({ pyexec: { redis: { cluster: { nodes: ['http://127.0.0.1:7000'] } } } }),
      (err: Error) => err instanceof ConfigError && /pyexec\.redis\.cluster\.nodes\[0\]/.test(err.message),
    );
    assert.throws(
      () => testConfig({ pyexec: { redis: { cluster: { nodes: [] } } } }),
      (err: Error) => err instanceof ConfigError && /pyexec\.redis\.cluster\.nodes/.test(err.message),
    );
    assert.throws(
      () => testConfig({ pyexec: { redis: { cluster: { nodes: ['redis://127.0.0.1:7000'], node: [] } } } }),
      (err: Error) => err instanceof ConfigError && /unknown key 'node'/.test(err.message),
    );
  });
});
