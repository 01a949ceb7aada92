/**
 * The chaos run behind test/integration/chaos.redis.test.ts (sized for CI) and bench/chaos.bench.ts
 * (longer): the fleet as SREs run it, one OS process per stage (two for execution), on real parts
 * only — a redis-server with AOF (`appendfsync always`), Jupyter servers with real kernels, the soft
 * IOC, the approver API — while requests flow and things die:
 *
 *   - kill -9 of each stage's process while it works (a job of its queue is active; an execution
 *     process while its code runs in a kernel), then a new process for the stage;
 *   - kill -9 of redis-server, and a restart from its append-only file;
 *   - kill -9 of a Jupyter server with its kernels, and a restart on the same port.
 *
 * Every write program writes a value unique to its request to one PV, and the IOC logs every write
 * request it receives (sim_ioc --write-log): how often each request's write ran is counted at the
 * IOC itself. The report says what was lost, ended twice or written twice (all must be empty).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { ApproverClient } from '../../src/approval/http/client.js';
import { type ApproverApi, startApproverApi } from '../../src/approval/http/server.js';
import { createToken } from '../../src/approval/tokens.js';
import { PyexecClient } from '../../src/client/pyexec-client.js';
import { type Config, parseConfig } from '../../src/config.js';
import { type SoftIoc, startSoftIoc } from '../../src/epics/soft-ioc.js';
import { type SpawnedJupyterServer, spawnJupyterServer } from '../../src/executors/jupyter-server.js';
import { kernelModes } from '../../src/executors/pool-config.js';
import { QueueName, type Stage } from '../../src/queues/envelope.js';
import type { PythonExecutionResponse } from '../../src/queues/result.js';
import { keyPrefix } from '../../src/redis/connection.js';
import { type LocalRedis, startLocalRedis } from '../../src/redis/redis-server.js';
import { type ChaosTask, chaosObjective } from './chaos-programs.js';
import { type ChaosReport, describeReport, judge } from './chaos-report.js';
import { type FleetProcess, spawnFleetProcess } from './ops-processes.js';

export interface ChaosOptions {
  readonly requests: number;
  /** Every `writeEvery`-th request writes (held for approval, approved through the API). */
  readonly writeEvery: number;
  /** Every `errorEvery`-th request's first code raises (regenerated). */
  readonly errorEvery: number;
  /** Every `rejectEvery`-th write is rejected by the approver (it must never reach the IOC). */
  readonly rejectEvery: number;
  /** kill -9s of each of generation, analysis, approval and result. */
  readonly stageKills: number;
  /** kill -9s of an execution process while its code runs. */
  readonly executionKills: number;
  readonly redisRestarts: number;
  readonly jupyterKills: number;
  readonly executionProcesses: number;
  readonly jupyterServers: number;
  /** Warm kernels per mode on each Jupyter server. */
  readonly sparesPerMode: number;
  readonly submitGapMs: number;
  readonly killGapMs: number;
  readonly finishTimeoutMs: number;
  readonly seed: number;
  readonly log?: (line: string) => void;
}

const STAGE_PROCS = ['generation', 'analysis', 'approval', 'result'] as const;
const ENTRY = 'test/support/chaos-fleet-entry.ts';

/** A small seeded generator (mulberry32): the same seed, the same run plan. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const inc = (m: Record<string, number>, k: string, by = 1) => {
  m[k] = (m[k] ?? 0) + by;
};

/** Direct children of `pid` (a Jupyter server's kernels), from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      // Gone.
    }
  }
  return out;
}

/** Polls `check` every `everyMs` until it holds (true) or `deadline` passes (false). */
async function until(deadline: number, everyMs: number, check: () => Promise<boolean>): Promise<boolean> {
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await sleep(everyMs);
  }
  return false;
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const t0 = Date.now();
  const log = (line: string) => opts.log?.(`[chaos +${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}`);
  const random = rng(opts.seed);
  const scratch = mkdtempSync(path.join(tmpdir(), 'pyexec-chaos-'));
  const writeLog = path.join(scratch, 'ioc-writes.jsonl');
  const cleanups: Array<() => Promise<unknown>> = [];
  const procs: Record<Stage, FleetProcess[]> = {
    generation: [],
    analysis: [],
    approval: [],
    execution: [],
    result: [],
  };
  const kills: Record<string, number> = {};
  const killsWhileWorking: Record<string, number> = {};
  let stopping = false;
  try {
    const redis: LocalRedis = await startLocalRedis({ appendOnly: true });
    cleanups.push(() => redis.stop());
    const ioc: SoftIoc = await startSoftIoc({ readOnlyEndpoint: true, writeLog });
    cleanups.push(() => ioc.stop());
    const { token, entry } = createToken('chaos', 'approver');
    const doc = {
      python_executor: { max_generation_retries: 2, max_execution_retries: 2, execution_timeout_seconds: 30 },
      execution: {
        code_generator: 'mock',
        execution_method: 'container',
        modes: {
          read_only: { kernel_name: 'python3-epics-readonly', allows_writes: false, environment: ioc.readOnlyEnv },
          write_access: {
            kernel_name: 'python3-epics-write',
            allows_writes: true,
            requires_approval: true,
            environment: ioc.env,
          },
        },
        container: { pool: {} as Record<string, unknown> },
      },
      approval: {
        global_mode: 'selective',
        capabilities: { python_execution: { enabled: true, mode: 'epics_writes' } },
      },
      control_system: { writes_enabled: true },
      pyexec: {
        redis: { prefix: `chaos-${opts.seed}-${process.pid}` },
        execution_root: path.join(scratch, 'runs'),
        metrics_port: 0,
        lock_duration_ms: 4000,
        stalled_interval_ms: 2000,
        sweep_interval_ms: 2000,
        infra_attempts: 5,
        infra_backoff_ms: 250,
        shutdown_grace_ms: 3000,
        concurrency: { execution: 2, generation: 4, analysis: 4, result: 4, approval: 4 },
        approver: { port: 0, tokens: [entry] },
      },
    };
    const modes = kernelModes(parseConfig(doc, {}));
    const servers: SpawnedJupyterServer[] = [];
    servers.push(
      ...(await Promise.all(Array.from({ length: opts.jupyterServers }, () => spawnJupyterServer({ modes })))),
    );
    cleanups.push(() => Promise.allSettled(servers.map((s) => s.stop())));
    doc.execution.container.pool = {
      servers: servers.map((s) => ({ url: s.url, token: s.token, name: s.name })),
      spares_per_mode: opts.sparesPerMode,
      lease_ttl_ms: 4000,
      lease_wait_ms: 120_000,
      reap_interval_ms: 1000,
      server_down_ms: 2000,
    };
    const config: Config = parseConfig(doc, {});
    mkdirSync(config.pyexec.execution_root, { recursive: true });
    const prefix = keyPrefix(config.pyexec.redis.prefix);
    const watch = new Redis(redis.url, { maxRetriesPerRequest: null });
    watch.on('error', () => {});
    cleanups.push(async () => watch.disconnect());

    const spawn = async (stage: Stage) => {
      const p = await spawnFleetProcess(config, redis.url, [stage], {}, ENTRY);
      procs[stage].push(p);
      return p;
    };
    await Promise.all([
      ...STAGE_PROCS.map((stage) => spawn(stage)),
      ...Array.from({ length: opts.executionProcesses }, () => spawn('execution')),
    ]);
    cleanups.push(async () => {
      const all = Object.values(procs).flat();
      for (const p of all) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
      await Promise.race([Promise.all(all.map((p) => p.exited)), sleep(15_000)]);
      for (const p of all) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await Promise.all(all.map((p) => p.exited));
    });
    const approverApi: ApproverApi = await startApproverApi({ config, redisUrl: redis.url });
    cleanups.push(() => approverApi.close());
    const approver = new ApproverClient({ url: approverApi.url, token, client: 'chaos' });
    const client = await PyexecClient.connect({ redisUrl: redis.url, config });
    cleanups.push(() => client.close());
    log(`up: redis ${redis.url}, ${servers.length} Jupyter servers, processes ${JSON.stringify(procCounts(procs))}`);

    // The requests: reads, writes (unique values), first-attempt code errors.
    const tasks: ChaosTask[] = [];
    for (let n = 0; n < opts.requests; n++) {
      const s = () => Math.round((0.3 + random() * 0.6) * 10) / 10;
      if (n % opts.errorEvery === opts.errorEvery - 1) tasks.push({ kind: 'error', n, sleep: s() });
      else if (n % opts.writeEvery === 0) tasks.push({ kind: 'write', n, value: 10_000 + n, before: s(), after: s() });
      else tasks.push({ kind: 'read', n, sleep: s() });
    }
    const ids = new Map<number, string>();
    let submitRetries = 0;
    let lastSubmitAt = 0;
    let next = 0;
    /** Submits the next `count` requests, `submitGapMs` apart. */
    const submitWave = async (count: number) => {
      for (const task of tasks.slice(next, next + count)) {
        next++;
        const request = {
          user_query: `chaos request ${task.n}`,
          task_objective: chaosObjective(task),
          execution_folder_name: `chaos_${task.n}`,
          thread_id: `chaos-${opts.seed}-${task.n}`,
        };
        // A submit that fails (Redis is restarting) is sent again: the same request on the same
        // thread is the same request, so a submit that did get through is not duplicated.
        for (;;) {
          try {
            ids.set(task.n, (await client.submit(request)).requestId);
            break;
          } catch (err) {
            submitRetries++;
            if (submitRetries % 20 === 1) log(`submit ${task.n} failed (${(err as Error).message}); again`);
            await sleep(200);
          }
        }
        lastSubmitAt = Date.now();
        await sleep(opts.submitGapMs);
      }
    };

    // The approver: approves held writes through the API, rejects every rejectEvery-th.
    const decided = new Map<string, 'approved' | 'rejected'>();
    let approverPaused = false;
    const approveHeld = async () => {
      for (const held of await approver.list()) {
        if (decided.has(held.holdJobId)) continue;
        const n = Number(/^chaos \w+ (\d+)/.exec(held.taskObjective)?.[1]);
        const writeIndex = Math.floor(n / opts.writeEvery);
        try {
          const detail = await approver.show(held.holdJobId);
          if (writeIndex % opts.rejectEvery === opts.rejectEvery - 1) {
            await approver.reject(held.holdJobId, { reason: 'chaos: rejected on purpose' });
            decided.set(held.holdJobId, 'rejected');
          } else {
            await approver.approve(held.holdJobId, {
              codeSha256: detail.codeSha256,
              analysisSha256: detail.analysisSha256,
            });
            decided.set(held.holdJobId, 'approved');
          }
        } catch {
          // Decided already, or Redis is away: the next round sees it again.
        }
      }
    };
    const approverLoop = (async () => {
      while (!stopping) {
        if (!approverPaused) await approveHeld().catch(() => {});
        await sleep(250);
      }
    })();

    // Progress, for the log: what is submitted, ended, and active in each queue.
    const progress = (async () => {
      while (!stopping) {
        await sleep(5000);
        if (stopping || !opts.log) continue;
        const ended = (
          await Promise.all(
            [...ids.values()].map((id) => watch.hexists(client.store.key(id), 'response').catch(() => 0)),
          )
        ).filter((x) => x === 1).length;
        const activeJobs = await Promise.all(
          (Object.keys(QueueName) as Stage[]).map(
            async (s) =>
              `${s}:${await watch.llen(`${prefix}:${QueueName[s]}:active`).catch(() => '?')}/${await watch.llen(`${prefix}:${QueueName[s]}:wait`).catch(() => '?')}`,
          ),
        );
        log(
          `submitted ${ids.size}/${tasks.length}, ended ${ended}; active/waiting ${activeJobs.join(' ')}; held ${decided.size} decided`,
        );
      }
    })();
    cleanups.push(() => progress);

    const active = async (stage: Stage) => (await watch.llen(`${prefix}:${QueueName[stage]}:active`)) > 0;
    /** A new process for the stage, started in the background; the stage's next kill waits for it. */
    const respawned: Partial<Record<Stage, Promise<void>>> = {};
    const respawn = (stage: Stage, dead: FleetProcess) => {
      procs[stage] = procs[stage].filter((p) => p !== dead);
      respawned[stage] = (async () => {
        await sleep(300 + random() * 1200);
        for (let i = 0; ; i++) {
          try {
            await spawn(stage);
            return;
          } catch (err) {
            // Redis may be restarting: try again.
            if (i > 20) throw err;
            await sleep(500);
          }
        }
      })();
    };

    const killStage = async (stage: (typeof STAGE_PROCS)[number]) => {
      await respawned[stage];
      const target = procs[stage][0]!;
      // Watching starts before the work: the kill lands while a job of the stage is active.
      const watching = until(Date.now() + 30_000, 1, () => active(stage));
      if (stage === 'approval') {
        // Held writes are approved in a burst, and the hold worker is killed as it takes them.
        approverPaused = true;
        await until(Date.now() + 30_000, 100, async () => (await approver.list()).length > 0);
        void approveHeld().catch(() => {});
      }
      const working = await watching;
      approverPaused = false;
      target.child.kill('SIGKILL');
      await target.exited;
      inc(kills, stage);
      if (working) inc(killsWhileWorking, stage);
      log(`kill -9 ${stage} (pid ${target.pid})${working ? ' while it worked' : ' (idle)'}`);
      respawn(stage, target);
    };

    const killExecution = async () => {
      await respawned.execution;
      const seen = new Map<string, number>();
      const end = Date.now() + 60_000;
      let victim: FleetProcess | undefined;
      while (Date.now() < end && !victim) {
        const running = await watch.hgetall(`${prefix}:chaos:running`).catch(() => ({}) as Record<string, string>);
        for (const key of Object.keys(running)) {
          const pid = key.split(':')[0];
          if (!seen.has(key)) seen.set(key, Date.now());
          // Its code has had time to start: set-up and code go to the kernel together, and a fresh
          // kernel waits in the pool (a lease waiting for one counts as running too: rarely).
          if (Date.now() - seen.get(key)! > 150) victim = procs.execution.find((p) => String(p.pid) === pid);
        }
        if (!victim) await sleep(50);
      }
      const target = victim ?? procs.execution[0]!;
      target.child.kill('SIGKILL');
      await target.exited;
      await watch
        .hkeys(`${prefix}:chaos:running`)
        .then((keys) => keys.filter((k) => k.startsWith(`${target.pid}:`)))
        .then((mine) => (mine.length > 0 ? watch.hdel(`${prefix}:chaos:running`, ...mine) : 0))
        .catch(() => {});
      inc(kills, 'execution');
      if (victim) inc(killsWhileWorking, 'execution');
      log(`kill -9 execution (pid ${target.pid})${victim ? ' while its code ran' : ' (no code running)'}`);
      respawn('execution', target);
    };

    const restartRedis = async () => {
      redis.kill();
      inc(kills, 'redis');
      inc(killsWhileWorking, 'redis');
      log('kill -9 redis-server');
      await sleep(1000);
      await redis.restart();
      log('redis-server restarted from its append-only file');
    };

    const killJupyter = async () => {
      const i = Math.floor(random() * servers.length);
      const s = servers[i]!;
      const kernels = s.pid ? childrenOf(s.pid) : [];
      if (s.pid) killPid(s.pid);
      for (const k of kernels) killPid(k);
      inc(kills, 'jupyter');
      inc(killsWhileWorking, 'jupyter');
      log(`kill -9 Jupyter server ${s.name} and its ${kernels.length} kernels`);
      await sleep(1500);
      await s.stop().catch(() => {});
      const port = Number(new URL(s.url).port);
      servers[i] = await spawnJupyterServer({ modes, port, token: s.token });
      log(`Jupyter server restarted on port ${port}`);
    };

    // The plan: every kill, shuffled, spread over the submissions.
    const plan: Array<() => Promise<void>> = [];
    for (const stage of STAGE_PROCS) for (let k = 0; k < opts.stageKills; k++) plan.push(() => killStage(stage));
    for (let k = 0; k < opts.executionKills; k++) plan.push(killExecution);
    for (let k = 0; k < opts.redisRestarts; k++) plan.push(restartRedis);
    for (let k = 0; k < opts.jupyterKills; k++) plan.push(killJupyter);
    for (let i = plan.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [plan[i], plan[j]] = [plan[j]!, plan[i]!];
    }
    // A wave of requests before each event, so that every stage has work when its process dies.
    const wave = Math.max(1, Math.floor(tasks.length / (plan.length + 1)));
    for (const event of plan) {
      // Every killed process is back before the next event and its wave: an event that first waited
      // for a respawn would find its wave already done.
      await Promise.all(Object.values(respawned));
      const happened = event();
      await sleep(100);
      await submitWave(wave);
      await happened;
      await sleep(opts.killGapMs * (0.5 + random()));
    }
    await submitWave(tasks.length - next);
    await Promise.all(Object.values(respawned));
    log(
      `all ${tasks.length} submitted, ${Object.values(kills).reduce((a, b) => a + b, 0)} kills done; waiting for every end`,
    );

    // Every request must end.
    const responses = new Map<number, PythonExecutionResponse>();
    const deadline = Date.now() + opts.finishTimeoutMs;
    let lastEndAt = Date.now();
    while (Date.now() < deadline && responses.size < tasks.length) {
      for (const [n, id] of ids) {
        if (responses.has(n)) continue;
        const snap = await client.store.get(id).catch(() => null);
        if (snap?.response) {
          responses.set(n, snap.response as PythonExecutionResponse);
          lastEndAt = Date.now();
        }
      }
      if (responses.size < tasks.length) await sleep(500);
    }
    stopping = true;
    await approverLoop;

    const judged = await judge({
      tasks,
      ids,
      responses,
      writeLog,
      finishedEvents: async (id) => {
        const events = (await watch.xrange(client.store.eventsKey(id), '-', '+')) as [string, string[]][];
        return events.filter(([, f]) => f[f.indexOf('type') + 1] === 'finished').length;
      },
      statusOf: async (id) => (await client.store.get(id).catch(() => null))?.status ?? 'no record',
    });
    let requeuedJobs = 0;
    let cursor = '0';
    do {
      const [next, keys] = await watch.scan(cursor, 'MATCH', `${prefix}:*-r[0-9]*`, 'COUNT', 1000);
      cursor = next;
      requeuedJobs += keys.filter((k) => /-r\d+$/.test(k)).length;
    } while (cursor !== '0');
    if (judged.lost.length > 0) {
      for (const p of Object.values(procs).flat())
        log(`stderr of ${p.stages.join(',')} ${p.pid}: ${p.stderr().slice(-2000)}`);
    }
    const result: ChaosReport = {
      requests: tasks.length,
      writes: tasks.filter((t) => t.kind === 'write').length,
      approved: [...decided.values()].filter((d) => d === 'approved').length,
      rejected: [...decided.values()].filter((d) => d === 'rejected').length,
      ...judged,
      kills,
      killsWhileWorking,
      requeuedJobs,
      submitRetries,
      durationMs: Date.now() - t0,
      drainMs: Math.max(0, lastEndAt - lastSubmitAt),
    };
    log(describeReport(result));
    return result;
  } finally {
    stopping = true;
    for (const step of cleanups.reverse()) await step().catch(() => {});
    rmSync(scratch, { recursive: true, force: true });
  }
}

function procCounts(procs: Record<Stage, FleetProcess[]>): Record<string, number> {
  return Object.fromEntries(Object.entries(procs).map(([s, ps]) => [s, ps.length]));
}

export { type ChaosReport, describeReport } from './chaos-report.js';
