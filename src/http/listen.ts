import type { FastifyInstance } from 'fastify';
import { ConfigError } from '../errors.js';

export interface ListenOptions {
  readonly port: number;
  readonly host: string;
  /** The setting that chose the port (with its flag and env var), named in the error. */
  readonly setting: string;
}

/**
 * `app.listen`, where a port in use or an address that cannot be bound is a ConfigError naming the
 * setting, not a bare EADDRINUSE. Resolves with the bound port (the chosen one when `port` is 0).
 */
export async function listenOn(app: FastifyInstance, options: ListenOptions): Promise<number> {
  const { port, host, setting } = options;
  try {
    await app.listen({ port, host });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new ConfigError(
        `${setting}: port ${port} on ${host} is already in use; choose another port (0: any free port)`,
        { cause: err },
      );
    }
    if (code === 'EADDRNOTAVAIL' || code === 'EACCES' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      throw new ConfigError(`${setting}: cannot listen on ${host}:${port} (${code}): ${(err as Error).message}`, {
        cause: err,
      });
    }
    throw err;
  }
  const addr = app.server.address();
  return addr && typeof addr === 'object' ? addr.port : port;
}
