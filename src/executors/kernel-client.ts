import { KernelAPI, KernelConnection, ServerConnection } from '@jupyterlab/services';
import WebSocket from 'ws';
import type { JupyterServerRef } from './jupyter-server.js';

// @jupyterlab/services announces every websocket it opens and every status it sees with
// console.debug, which in Node is stdout (reserved for CLI output). Drop those two messages only.
const debug = console.debug.bind(console);
console.debug = (...args: unknown[]) => {
  const first = args[0];
  if (typeof first === 'string' && (first.startsWith('Starting WebSocket: ') || first.startsWith('Kernel: '))) return;
  debug(...args);
};

/**
 * A kernel connection whose reconnects never reject. When the server auto-restarts a dead kernel,
 * @jupyterlab/services reconnects from a floating promise; disposing the connection meanwhile
 * (as the executor does once the request has failed) would reject it unhandled and end the
 * process. Whether the connection works is judged by the pool, not by this promise.
 *
 * The same goes for the kernel_info request the library sends on every reconnect (`void
 * p.then(...)`, no catch): when the dying kernel's state is cleared, its future is canceled and
 * the rejection is unhandled. Only that cancellation is absorbed; any other error still rejects.
 */
class PoolKernelConnection extends KernelConnection {
  override async reconnect(): Promise<void> {
    try {
      await super.reconnect();
    } catch {
      // Disconnected: the kernel is being disposed or is gone; the pool resets it.
    }
  }

  override async requestKernelInfo(): ReturnType<KernelConnection['requestKernelInfo']> {
    try {
      return await super.requestKernelInfo();
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('Canceled future for kernel_info_request')) return undefined;
      throw err;
    }
  }
}

/** Thrown by a REST call when the server answered 404: the kernel is gone (the server is fine). */
export class KernelGoneError extends Error {}

/** Thrown when a server cannot be reached (connection refused, timeout): mark it down. */
export class ServerUnreachableError extends Error {}

/**
 * The REST and websocket calls pyexec makes to one Jupyter server, through @jupyterlab/services.
 * REST calls time out (`restTimeoutMs`, or `startTimeoutMs` for starts and restarts), and errors
 * are translated into the two cases the pool acts on: the kernel is gone, the server is down.
 */
export class JupyterServerClient {
  private readonly quick: ServerConnection.ISettings;
  private readonly slow: ServerConnection.ISettings;

  constructor(
    readonly ref: JupyterServerRef,
    options: { restTimeoutMs?: number; startTimeoutMs?: number } = {},
  ) {
    const make = (timeoutMs: number) =>
      ServerConnection.makeSettings({
        baseUrl: ref.url,
        wsUrl: ref.url.replace(/^http/, 'ws'),
        token: ref.token,
        appendToken: true,
        WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
        fetch: (input: RequestInfo | URL, init?: RequestInit) =>
          fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(timeoutMs) }),
        init: { cache: 'no-store' },
      });
    this.quick = make(options.restTimeoutMs ?? 5000);
    this.slow = make(options.startTimeoutMs ?? 60_000);
  }

  get name(): string {
    return this.ref.name;
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ServerConnection.ResponseError) {
        if (err.response.status === 404) throw new KernelGoneError(`${what}: 404 on ${this.ref.name}`, { cause: err });
        if (err.response.status >= 500 || err.response.status === 403)
          throw new ServerUnreachableError(`${what}: HTTP ${err.response.status} from ${this.ref.name}`, {
            cause: err,
          });
        throw err;
      }
      throw new ServerUnreachableError(`${what}: ${this.ref.name} unreachable (${(err as Error).message})`, {
        cause: err,
      });
    }
  }

  /** Ids of the kernels running on the server. */
  async listKernelIds(): Promise<Set<string>> {
    const models = await this.call('list kernels', () => KernelAPI.listRunning(this.quick));
    return new Set(models.map((m) => m.id));
  }

  /** Starts a kernel of a kernelspec; resolves once the server has it running. */
  async startKernel(kernelName: string): Promise<string> {
    const model = await this.call('start kernel', () => KernelAPI.startNew({ name: kernelName }, this.slow));
    return model.id;
  }

  /** Restarts a kernel in place (same id, new process); the server waits until it answers. */
  async restartKernel(id: string): Promise<void> {
    await this.call('restart kernel', () => KernelAPI.restartKernel(id, this.slow));
  }

  async interruptKernel(id: string): Promise<void> {
    await this.call('interrupt kernel', () => KernelAPI.interruptKernel(id, this.quick));
  }

  async shutdownKernel(id: string): Promise<void> {
    await this.call('shut down kernel', () => KernelAPI.shutdownKernel(id, this.quick));
  }

  /** Whether the server still has the kernel (false: it is gone, or dead). */
  async kernelExists(id: string): Promise<boolean> {
    const model = await this.call('get kernel', () => KernelAPI.getKernelModel(id, this.quick));
    return model !== undefined && model.execution_state !== 'dead';
  }

  /** Opens a websocket to a kernel and waits for its kernel_info reply. Dispose it when done. */
  async connect(id: string, timeoutMs: number): Promise<KernelConnection> {
    const model = await this.call('get kernel', () => KernelAPI.getKernelModel(id, this.quick));
    if (!model) throw new KernelGoneError(`kernel ${id} is gone from ${this.ref.name}`);
    const kernel = new PoolKernelConnection({ model, serverSettings: this.quick, handleComms: false });
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        kernel.info,
        new Promise((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new ServerUnreachableError(`no kernel_info reply from ${id} on ${this.ref.name} in ${timeoutMs} ms`),
              ),
            timeoutMs,
          );
        }),
      ]);
    } catch (err) {
      kernel.dispose();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return kernel;
  }
}
