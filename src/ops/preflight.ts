import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import { loadLimits } from '../executors/index.js';
import {
  type KernelModes,
  type KernelPoolSettings,
  kernelModes,
  kernelPoolSettings,
} from '../executors/pool-config.js';
import type { CodeGenerator } from '../generators/code-generator.js';
import { createCodeGenerator } from '../generators/factory.js';
import type { Logger } from '../logger.js';
import { STAGES, type Stage } from '../queues/queue-name.js';

export interface PreflightOptions {
  /** The stages this process will run. @defaultValue every stage */
  readonly stages?: readonly Stage[];
  readonly logger: Logger;
  /** A generator given by the caller (the demo's): the configured one is not built. */
  readonly generator?: CodeGenerator;
}

/**
 * Every check of a config that can fail, done before the process starts anything (a redis-server,
 * the soft IOC, Jupyter servers, the analyzer's helper): parseConfig has checked keys and
 * combinations; this adds what needs more than the document. The generator is built here (missing
 * API key, unknown name, a custom module that does not load) and handed to the Fleet; the channel
 * limits database is read; the kernel pool settings parse; and the servers of a static pool are
 * asked for their kernelspecs, so an unknown `kernel_name` is refused by name. A server that does
 * not answer is only a warning: the pool skips it until it does.
 */
export async function preflight(config: Config, options: PreflightOptions): Promise<{ generator?: CodeGenerator }> {
  const stages = options.stages ?? STAGES;
  const out: { generator?: CodeGenerator } = {};
  if (stages.includes('generation')) {
    out.generator = options.generator ?? (await createCodeGenerator(config, { logger: options.logger }));
  }
  if (stages.includes('execution')) {
    loadLimits(config);
    const modes = kernelModes(config);
    const container = config.execution.execution_method === 'container' || config.execution.allow_method_override;
    if (container) {
      const settings = kernelPoolSettings(config);
      await checkKernelNames(settings.servers, modes, options.logger);
    }
  }
  return out;
}

/** Asks each listed Jupyter server for its kernelspecs; a mode's kernel_name it lacks is a ConfigError. */
export async function checkKernelNames(
  servers: KernelPoolSettings['servers'],
  modes: KernelModes,
  logger: Logger,
  timeoutMs = 5000,
): Promise<void> {
  await Promise.all(
    servers.map(async (server, i) => {
      const name = server.name ?? server.url;
      const base = server.url.endsWith('/') ? server.url : `${server.url}/`;
      let res: Response;
      try {
        res = await fetch(new URL('api/kernelspecs', base), {
          headers: server.token ? { authorization: `token ${server.token}` } : {},
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        logger.warn(
          { server: name, err: (err as Error).message },
          'Jupyter server not reachable at start-up; its kernel names are checked when it answers',
        );
        return;
      }
      if (res.status === 401 || res.status === 403) {
        throw new ConfigError(
          `execution.container: the Jupyter server ${name} refused the token (HTTP ${res.status}); check jupyter_token or pool.servers[${i}].token`,
        );
      }
      if (!res.ok) {
        logger.warn({ server: name, status: res.status }, 'Jupyter server did not list its kernelspecs');
        return;
      }
      const body = (await res.json()) as { kernelspecs?: Record<string, unknown> };
      const known = Object.keys(body.kernelspecs ?? {});
      for (const mode of server.modes) {
        const kernel = modes[mode].kernel_name;
        if (!known.includes(kernel)) {
          throw new ConfigError(
            `execution.modes.${mode}.kernel_name: '${kernel}' is not a kernel of the Jupyter server ${name} (it has: ${known.join(', ') || 'none'})`,
          );
        }
      }
    }),
  );
}
