import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KernelConnection } from '@jupyterlab/services';
import { ExecutorUnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { EXECUTION_MODES } from '../modes.js';
import type { RedisConnection as Redis } from '../redis/connection.js';
import type { ExecutionMode } from './executor.js';
import type { JupyterServerRef } from './jupyter-server.js';
import { JupyterServerClient, KernelGoneError, ServerUnreachableError } from './kernel-client.js';
import { type KernelRecord, type KernelState, LeaseStore } from './kernel-leases.js';
import type { KernelModes, KernelPoolSettings } from './pool-config.js';

/** A kernel held by one request. Release it in `finally`; it is reset before anyone else gets it. */
/** See KernelPool.lockMs. */
const LOCK_TTL_MS = 15_000;

export interface KernelLease {
  readonly kernelKey: string;
  readonly leaseId: string;
  readonly kernelId: string;
  readonly mode: ExecutionMode;
  readonly server: JupyterServerClient;
  /** Aborted if the lease is lost (not renewed in time, and reaped by another process). */
  readonly lost: AbortSignal;
  /** Opens a websocket to the kernel (waits for its kernel_info reply). */
  connect(): Promise<KernelConnection>;
  /** Ends the lease; the kernel is restarted in the background, off the request's path. */
  release(): Promise<void>;
}

export interface KernelPoolOptions {
  readonly redis: Redis;
  /** The fleet's key prefix (`{pyexec}`). */
  readonly prefix: string;
  /** Names this pool's keys: processes with the same id share the pool. */
  readonly poolId: string;
  readonly servers: readonly JupyterServerRef[];
  readonly modes: KernelModes;
  readonly settings: KernelPoolSettings;
  readonly logger: Logger;
  readonly metrics?: Metrics | undefined;
  /** Private pools (spawned servers) delete their keys on close. */
  readonly privatePool?: boolean;
}

export type PoolStats = Record<ExecutionMode, Record<KernelState | 'total', number>>;

/**
 * A pool of Jupyter kernels shared by every execution worker that uses the same servers: leases
 * live in Redis with a TTL and a heartbeat (LeaseStore), so no kernel is ever used by two requests
 * at once, and the kernel of a worker that died is reset and reused once its lease expires.
 * Each process keeps `spares_per_mode` kernels per server and mode running (whoever holds the
 * provision lock starts the missing ones), restarts every kernel after each lease, off the
 * request's path, skips servers that stop answering, and replaces kernels that are gone.
 */
export class KernelPool {
  private readonly store: LeaseStore;
  private readonly clients = new Map<string, JupyterServerClient>();
  private readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly background = new Set<Promise<unknown>>();
  /** Websockets opened when this process warmed a kernel (or ahead of a lease, `preopen`), handed
   * to the next lease of it here. */
  private readonly connections = new Map<string, KernelConnection>();
  /** Kernel keys whose websocket `preopen` is opening. */
  private readonly opening = new Set<string>();
  private readonly log: Logger;
  private reaper: NodeJS.Timeout | undefined;
  private reaping: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  private constructor(private readonly options: KernelPoolOptions) {
    this.store = new LeaseStore(options.redis, options.prefix, options.poolId);
    this.log = options.logger.child({ component: 'kernel-pool', pool: options.poolId });
    for (const ref of options.servers) {
      this.clients.set(
        ref.name,
        new JupyterServerClient(ref, { startTimeoutMs: options.settings.kernel_start_timeout_ms }),
      );
    }
  }

  /** Starts the pool: registers what runs, starts missing kernels (when it gets the lock), reaps. */
  static async start(options: KernelPoolOptions): Promise<KernelPool> {
    const pool = new KernelPool(options);
    await pool.provision();
    pool.reaper = setInterval(() => {
      pool.reaping ??= pool.reapOnce().finally(() => (pool.reaping = undefined));
    }, options.settings.reap_interval_ms);
    pool.reaper.unref();
    return pool;
  }

  /** The pool's id: the part of its Redis keys that processes sharing it have in common. */
  get id(): string {
    return this.options.poolId;
  }

  /** The client of a server of the pool, by name. */
  serverClient(name: string): JupyterServerClient | undefined {
    return this.clients.get(name);
  }

  private get settings(): KernelPoolSettings {
    return this.options.settings;
  }

  /**
   * Life of a reset or provisioning lock that its holder does not renew: the holder renews it
   * every third of this while it works (a restart may take kernel_start_timeout_ms), so the lock
   * of a process that was killed lapses this soon and another process takes the kernel over.
   */
  private get lockMs(): number {
    return LOCK_TTL_MS;
  }

  /** Renews a lock every third of its life until the returned function is called. */
  private holdLock(renew: () => Promise<unknown>): () => void {
    const timer = setInterval(() => void renew().catch(() => {}), Math.floor(this.lockMs / 3));
    timer.unref?.();
    return () => clearInterval(timer);
  }

  /** Whether every mode some server serves has at least one kernel on a server that answers. */
  async ready(): Promise<boolean> {
    const records = await this.store.all();
    for (const mode of this.servedModes()) {
      const live = records.filter((r) => r.mode === mode);
      let ok = false;
      for (const r of live) if (!(await this.store.isDown(r.server))) ok = true;
      if (!ok) return false;
    }
    return true;
  }

  private servedModes(): Set<ExecutionMode> {
    return new Set(this.options.servers.flatMap((s) => s.modes));
  }

  /**
   * Leases a kernel of `mode`, waiting up to `lease_wait_ms` for one to be free. Throws
   * ExecutorUnavailableError (started: false) when none is free in time: an infrastructure error.
   */
  async acquire(mode: ExecutionMode, signal: AbortSignal): Promise<KernelLease> {
    if (this.closing) throw new ExecutorUnavailableError('the kernel pool is closing');
    if (!this.servedModes().has(mode))
      throw new ExecutorUnavailableError(`no Jupyter server of the pool serves ${mode}`);
    const started = Date.now();
    const leaseId = randomUUID();
    const observe = (outcome: string) =>
      this.options.metrics?.kernelLeaseWait.observe({ mode, outcome }, (Date.now() - started) / 1000);
    let delay = 5;
    for (;;) {
      if (signal.aborted) {
        observe('aborted');
        throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
      }
      const key = await this.store.claim(mode, leaseId, this.owner, this.settings.lease_ttl_ms);
      if (key) {
        const record = await this.store.get(key);
        const client = record && this.clients.get(record.server);
        if (record && client) {
          observe('leased');
          return this.lease(record, client, leaseId);
        }
        // A record of a server this process does not know: not ours to use.
        if (record) await this.store.remove(key, record.mode);
        continue;
      }
      const waited = Date.now() - started;
      if (waited >= this.settings.lease_wait_ms) {
        observe('timeout');
        throw new ExecutorUnavailableError(`no ${mode} kernel free within ${this.settings.lease_wait_ms} ms`);
      }
      await sleep(Math.min(delay, this.settings.lease_wait_ms - waited), undefined, { signal }).catch(() => {});
      delay = Math.min(delay * 2, 100);
    }
  }

  private lease(record: KernelRecord, client: JupyterServerClient, leaseId: string): KernelLease {
    const lost = new AbortController();
    const ttl = this.settings.lease_ttl_ms;
    const beat = setInterval(
      () => {
        this.store.heartbeat(record.key, leaseId, ttl).then(
          (ok) => {
            if (!ok)
              lost.abort(new ExecutorUnavailableError(`lease of kernel ${record.kernelId} lost`, { started: true }));
          },
          () => {},
        );
      },
      Math.max(250, Math.floor(ttl / 3)),
    );
    beat.unref();
    let released = false;
    return {
      kernelKey: record.key,
      leaseId,
      kernelId: record.kernelId,
      mode: record.mode,
      server: client,
      lost: lost.signal,
      connect: () => this.connect(record, client),
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(beat);
        const token = randomUUID();
        if (await this.store.release(record.key, leaseId, token, this.lockMs)) {
          this.inBackground(this.reset(record, client, token, 'after_use'));
        }
      },
    };
  }

  /** The websocket this process opened when it warmed the kernel, if still good; else a new one. */
  private async connect(record: KernelRecord, client: JupyterServerClient): Promise<KernelConnection> {
    const cached = this.connections.get(record.key);
    this.connections.delete(record.key);
    if (cached && !cached.isDisposed && cached.connectionStatus === 'connected' && cached.status === 'idle') {
      // jupyter_server keeps a kernel's websocket open after the kernel is shut down (a culler, an
      // operator): a request sent on it is never answered. Checked beside the request, not before
      // it (one REST call, off the request's path): a kernel found gone has its websocket closed,
      // which ends the request's cell as a kernel death rather than at its timeout.
      void client.kernelExists(record.kernelId).then(
        (present) => present || cached.dispose(),
        () => {}, // the server does not answer: the request's own messages will tell
      );
      return cached;
    }
    cached?.dispose();
    return client.connect(record.kernelId, this.settings.kernel_start_timeout_ms);
  }

  private dropConnection(key: string): void {
    this.connections.get(key)?.dispose();
    this.connections.delete(key);
  }

  private inBackground(p: Promise<unknown>): void {
    const tracked = p.catch((err) => this.log.error({ err: (err as Error).message }, 'background kernel work failed'));
    this.background.add(tracked);
    void tracked.finally(() => this.background.delete(tracked));
  }

  /** Restarts a kernel this process holds the lock of, then offers it again; replaces it if it is gone. */
  private async reset(record: KernelRecord, client: JupyterServerClient, token: string, reason: string): Promise<void> {
    const release = this.holdLock(() => this.store.extendLock(record.key, token, this.lockMs));
    try {
      this.dropConnection(record.key);
      if (await this.replace(record, client, reason)) return;
      await client.restartKernel(record.kernelId);
      await this.warm(client, record.kernelId);
      this.options.metrics?.kernelReplacements.inc({ mode: record.mode, action: 'restart', reason });
      await this.store.ready(record.key, record.mode, token);
    } catch (err) {
      if (err instanceof KernelGoneError) {
        this.dropConnection(record.key);
        await this.store.remove(record.key, record.mode);
        // Provisioning (under its lock) starts the missing kernel: starting one here as well raced
        // with the reaper's provisioning, which could not yet see this kernel and started a second.
        await this.provision();
        this.options.metrics?.kernelReplacements.inc({ mode: record.mode, action: 'replace', reason });
        return;
      }
      if (err instanceof ServerUnreachableError) {
        release();
        this.log.warn({ server: client.name, err: err.message }, 'Jupyter server not answering; skipped for a while');
        await this.store.markDown(client.name, this.settings.server_down_ms);
        // Let the lock lapse when the server is due back, so a reaper tries again then.
        await this.store.extendLock(record.key, token, this.settings.server_down_ms);
        return;
      }
      throw err;
    } finally {
      release();
    }
  }

  /**
   * A fresh kernel takes a used one's place: started (forked from the server's warm zygote, tens of
   * milliseconds) and warm before the used one is dropped, which is shut down in the background.
   * No restart in place: jupyter_client waits for a killed kernel in 100 ms polls. False when no
   * kernel could be started (the caller restarts the used one instead).
   */
  private async replace(record: KernelRecord, client: JupyterServerClient, reason: string): Promise<boolean> {
    try {
      await this.startKernel(client, record.mode);
    } catch (err) {
      if (err instanceof ServerUnreachableError) throw err;
      this.log.warn({ server: client.name, err: (err as Error).message }, 'cannot start a fresh kernel; restarting');
      return false;
    }
    await this.store.remove(record.key, record.mode);
    this.inBackground(client.shutdownKernel(record.kernelId).catch(() => {}));
    this.options.metrics?.kernelReplacements.inc({ mode: record.mode, action: 'replace', reason });
    return true;
  }

  private async startKernel(client: JupyterServerClient, mode: ExecutionMode): Promise<void> {
    const id = await client.startKernel(this.options.modes[mode].kernel_name);
    await this.warm(client, id);
    await this.store.register(client.name, id, mode);
  }

  /**
   * Waits for the kernel's first kernel_info reply: the server answers a start or a restart as soon
   * as the process runs, but the kernel replies only once its start-up (imports, guard) is done.
   * A lease must find it warm.
   */
  private async warm(client: JupyterServerClient, id: string): Promise<void> {
    const key = LeaseStore.kernelKey(client.name, id);
    this.dropConnection(key);
    const kernel = await client.connect(id, this.settings.kernel_start_timeout_ms);
    // Kept for the next lease of this kernel in this process: it saves the websocket handshake.
    if (this.closing) kernel.dispose();
    else this.connections.set(key, kernel);
  }

  /** Starts the kernels missing on each server that answers (under the provision lock). */
  async provision(): Promise<void> {
    const token = randomUUID();
    if (!(await this.store.lockProvision(token, this.lockMs))) return;
    const release = this.holdLock(() => this.store.extendProvision(token, this.lockMs));
    try {
      // Servers side by side: a server's first kernel waits for its zygote's warm imports. Each
      // settles before the lock goes.
      const done = await Promise.allSettled(
        [...this.clients.values()].map(async (client) => {
          if (await this.store.isDown(client.name)) return;
          const listedAt = Date.now();
          let running: Set<string>;
          try {
            running = await client.listKernelIds();
          } catch (err) {
            this.log.warn(
              { server: client.name, err: (err as Error).message },
              'Jupyter server not answering; skipped for a while',
            );
            await this.store.markDown(client.name, this.settings.server_down_ms);
            return;
          }
          const records = (await this.store.all()).filter((r) => r.server === client.name);
          // A kernel that is leased or being replaced is its holder's to replace (or the reaper's, once
          // the holder's lock lapses): dropping it here as well, and starting another, would leave two.
          const held = (r: KernelRecord) => r.state !== 'idle';
          for (const r of records) {
            if (!running.has(r.kernelId) && r.created < listedAt && !held(r)) {
              this.log.warn({ server: client.name, kernelId: r.kernelId }, 'kernel gone from its server; dropping it');
              this.dropConnection(r.key);
              await this.store.remove(r.key, r.mode);
            }
          }
          // A kernel started after the listing (a reset's replacement, between the listing and the
          // read of the records) counts too: not counting it started one kernel more than the spares.
          const present = (r: KernelRecord) => running.has(r.kernelId) || held(r) || r.created >= listedAt;
          for (const mode of client.ref.modes) {
            const have = records.filter((r) => r.mode === mode && present(r)).length;
            for (let i = have; i < this.settings.spares_per_mode; i++) {
              try {
                await this.startKernel(client, mode);
              } catch (err) {
                this.log.error({ server: client.name, mode, err: (err as Error).message }, 'cannot start a kernel');
                if (err instanceof ServerUnreachableError)
                  await this.store.markDown(client.name, this.settings.server_down_ms);
                break;
              }
            }
          }
        }),
      );
      const failed = done.find((d) => d.status === 'rejected');
      if (failed) throw failed.reason;
    } finally {
      release();
      await this.store.unlockProvision(token);
    }
  }

  /** One pass of the reaper: reset kernels of dead holders, start missing kernels, refresh gauges. */
  private async reapOnce(): Promise<void> {
    try {
      for (const r of await this.store.all()) {
        if (r.state === 'idle') continue;
        const token = randomUUID();
        const reason = await this.store.reap(r.key, token, this.lockMs);
        const client = this.clients.get(r.server);
        if (!reason || !client) continue;
        this.log.warn({ kernelId: r.kernelId, server: r.server, reason }, 'resetting a kernel left by another holder');
        this.inBackground(this.reset(r, client, token, reason));
      }
      await this.provision();
      await this.preopen();
      await this.refreshGauges();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'kernel pool reaper pass failed');
    }
  }

  /**
   * Opens a websocket, ahead of any lease, to each idle kernel of the pool that this process has
   * none to (a kernel another process started or replaced), so that a lease here does not open one
   * on the request's path; drops the websockets of kernels that left the pool (replaced, gone).
   * A websocket kept here is used by a lease only while it is connected and its kernel idle
   * (`connect`); otherwise the lease opens a new one. Runs in each reaper pass.
   */
  async preopen(): Promise<void> {
    const records = await this.store.all();
    const present = new Set(records.map((r) => r.key));
    for (const key of [...this.connections.keys()]) if (!present.has(key)) this.dropConnection(key);
    for (const r of records) {
      if (this.closing || r.state !== 'idle' || this.connections.has(r.key) || this.opening.has(r.key)) continue;
      const client = this.clients.get(r.server);
      if (!client || (await this.store.isDown(r.server))) continue;
      this.opening.add(r.key);
      try {
        const kernel = await client.connect(r.kernelId, this.settings.kernel_start_timeout_ms);
        // One opened meanwhile (by a warm-up here) wins; a kernel leased meanwhile keeps this one
        // until its reset here drops it, or the next pass finds it gone from the pool.
        if (this.closing || this.connections.has(r.key)) kernel.dispose();
        else this.connections.set(r.key, kernel);
      } catch (err) {
        this.log.debug({ kernelId: r.kernelId, err: (err as Error).message }, 'cannot open a websocket ahead');
      } finally {
        this.opening.delete(r.key);
      }
    }
  }

  /** Kernel keys this process holds an open websocket to, ready for a lease (tests, diagnostics). */
  openConnections(): string[] {
    return [...this.connections.entries()]
      .filter(([, k]) => !k.isDisposed && k.connectionStatus === 'connected')
      .map(([key]) => key);
  }

  async stats(): Promise<PoolStats> {
    const empty = () => ({ idle: 0, leased: 0, recycling: 0, total: 0 });
    const stats: PoolStats = { read_only: empty(), write_access: empty() };
    for (const r of await this.store.all()) {
      stats[r.mode][r.state] = (stats[r.mode][r.state] ?? 0) + 1;
      stats[r.mode].total += 1;
    }
    return stats;
  }

  async refreshGauges(): Promise<void> {
    const metrics = this.options.metrics;
    if (!metrics) return;
    const stats = await this.stats();
    for (const mode of EXECUTION_MODES) {
      for (const state of ['idle', 'leased', 'recycling'] as const)
        metrics.kernels.set({ mode, state }, stats[mode][state]);
    }
  }

  /** Waits for background resets (bounded); a private pool also drops its keys. Idempotent. */
  async close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.reaper);
      await this.reaping;
      const timeout = new AbortController();
      await Promise.race([
        Promise.allSettled([...this.background]),
        sleep(this.settings.kernel_start_timeout_ms, undefined, { signal: timeout.signal }).catch(() => {}),
      ]);
      timeout.abort();
      for (const key of [...this.connections.keys()]) this.dropConnection(key);
      if (this.options.privatePool) await this.store.destroy();
    })();
    return this.closing;
  }
}
