import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { PyexecClient } from '../client/pyexec-client.js';
import type { Config } from '../config.js';
import { ConfigError, ServiceError } from '../errors.js';
import type { Logger } from '../logger.js';
import { STAGES, type Stage } from '../queues/queue-name.js';
import { registerApprovalsCommands } from './approvals-command.js';
import type { GlobalOptions } from './context.js';

/*
 * The `pyexec` command. Only commander and a few import-free modules load at start-up: each verb
 * imports what it uses when it runs (`pyexec --help` must not load zod, BullMQ, fastify or the
 * Jupyter client). bench/cli.bench.ts measures it.
 */

/** The package version (package.json sits two folders up from both src/cli and dist/cli). */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const program = new Command('pyexec')
  .description(
    'Python execution service for accelerator control rooms: generate, analyse, approve and run Python on a BullMQ fleet',
  )
  .option('-c, --config <file>', 'config.yml (default: $PYEXEC_CONFIG or ./config.yml)')
  .option('--redis <url>', 'Redis URL (default: config, $PYEXEC_REDIS_URL, or a running `pyexec up`)')
  .version(version(), '-V, --version', 'print the version')
  .showHelpAfterError();

const globals = (): GlobalOptions => program.opts<GlobalOptions>();
let processLogger: Logger | undefined;
const logger = async (): Promise<Logger> => {
  processLogger ??= (await import('../logger.js')).createLogger();
  return processLogger;
};
/** The config of this invocation (--config, $PYEXEC_CONFIG, ./config.yml). */
const config = async (): Promise<Config> => (await import('./context.js')).resolveConfig(globals());
const redisUrl = async (c: Config): Promise<string> => (await import('./context.js')).requireRedisUrl(globals(), c);
const onShutdown = async (close: (graceMs: number) => Promise<void>, c: Config) =>
  (await import('./shutdown.js')).onShutdown(close, c.pyexec.shutdown_grace_ms, await logger());

/** `--metrics-port` and friends: a port number (0: any free port), or `off` (commander turns a null into ''). */
function portFlag(flag: string): (value: string) => number | 'off' {
  return (value) => {
    if (value === 'off') return 'off';
    const port = Number(value);
    if (!/^\d+$/.test(value) || port > 65_535)
      throw new ConfigError(`${flag}: expected a port number (0-65535, 0: any free port) or off, got '${value}'`);
    return port;
  };
}

interface PortFlags {
  metricsPort?: number | 'off';
  metricsHost?: string;
  approverPort?: number | 'off';
  approverHost?: string;
  apiPort?: number | 'off';
  apiHost?: string;
}

/** Flags of the listening ports override the config (and so are checked with it). */
function applyPortFlags(config: Config, o: PortFlags): void {
  const port = (p: number | 'off') => (p === 'off' ? null : p);
  if (o.metricsPort !== undefined) config.pyexec.metrics_port = port(o.metricsPort);
  if (o.metricsHost !== undefined) config.pyexec.metrics_host = o.metricsHost;
  if (o.approverPort !== undefined) config.pyexec.approver.port = port(o.approverPort);
  if (o.approverHost !== undefined) config.pyexec.approver.host = o.approverHost;
  if (o.apiPort !== undefined) config.pyexec.api.port = port(o.apiPort);
  if (o.apiHost !== undefined) config.pyexec.api.host = o.apiHost;
}

const metricsFlags = (cmd: Command): Command =>
  cmd
    .option(
      '--metrics-port <port>',
      '/metrics, /healthz, /readyz port; 0: any free port, off: none (default: pyexec.metrics_port)',
      portFlag('--metrics-port'),
    )
    .option('--metrics-host <host>', 'interface of the metrics server (default: pyexec.metrics_host, 127.0.0.1)');

/** Applies `--generator/--base-url/--model` to the config. */
function applyGeneratorFlags(config: Config, o: { generator?: string; baseUrl?: string; model?: string }): void {
  if (o.generator) config.execution.code_generator = o.generator;
  const name = config.execution.code_generator;
  const settings = { ...(config.execution.generators[name] ?? {}) };
  if (o.baseUrl) settings['base_url'] = o.baseUrl;
  if (o.model) settings['model_id'] = o.model;
  config.execution.generators[name] = settings;
}

async function readInput(file: string | undefined): Promise<string> {
  if (!file || file === '-') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  return readFileSync(file, 'utf8');
}

async function withClient<T>(fn: (client: PyexecClient, config: Config) => Promise<T>): Promise<T> {
  const c = await config();
  const { PyexecClient } = await import('../client/pyexec-client.js');
  const client = await PyexecClient.connect({ redisUrl: await redisUrl(c), config: c });
  try {
    return await fn(client, c);
  } finally {
    await client.close();
  }
}

metricsFlags(program.command('up'))
  .description(
    'run every worker in this process (starts a private redis-server and the soft IOC when none is configured)',
  )
  .option('--stages <stages...>', `stages to run (${STAGES.join(', ')})`)
  .option('--no-ioc', 'do not start the simulated accelerator')
  .option('--generator <name>', 'code generator: basic, claude_code, mock, hybrid or a custom name')
  .option('--base-url <url>', 'OpenAI-compatible endpoint for the basic generator')
  .option('--model <id>', 'model id for the generator')
  .option(
    '--approver-port <port>',
    'approver API and page port; 0: any free port, off: none (default: pyexec.approver.port, 8470)',
    portFlag('--approver-port'),
  )
  .option('--approver-host <host>', 'interface of the approver API (default: pyexec.approver.host, 127.0.0.1)')
  .option(
    '--api-port <port>',
    'producer HTTP API port; 0: any free port, off: none (default: pyexec.api.port, 8471)',
    portFlag('--api-port'),
  )
  .option('--api-host <host>', 'interface of the producer API (default: pyexec.api.host, 127.0.0.1)')
  .action(
    async (o: PortFlags & { stages?: Stage[]; ioc: boolean; generator?: string; baseUrl?: string; model?: string }) => {
      const c = await config();
      applyGeneratorFlags(c, o);
      applyPortFlags(c, o);
      const { upCommand } = await import('./up-command.js');
      await upCommand(
        { ...globals(), ioc: o.ioc, ...(o.stages ? { stages: checkStages(o.stages) } : {}) },
        c,
        await logger(),
      );
    },
  );

function checkStages(stages: string[]): Stage[] {
  for (const s of stages)
    if (!STAGES.includes(s as Stage)) throw new ServiceError(`unknown stage '${s}'; stages: ${STAGES.join(', ')}`);
  return stages as Stage[];
}

metricsFlags(program.command('worker'))
  .description('run the workers of the given stages (one process per stage type scales each on its own)')
  .argument('<stages...>', `one or more of: ${STAGES.join(', ')}`)
  .action(async (stages: string[], o: PortFlags) => {
    const c = await config();
    applyPortFlags(c, o);
    const [{ Fleet }, { preflight }] = await Promise.all([
      import('../workers/fleet.js'),
      import('../ops/preflight.js'),
    ]);
    const log = await logger();
    const { generator } = await preflight(c, { stages: checkStages(stages), logger: log });
    const fleet = await Fleet.start({
      config: c,
      redisUrl: await redisUrl(c),
      stages: checkStages(stages),
      logger: log,
      ...(generator ? { generator } : {}),
    });
    await onShutdown((grace) => fleet.close(grace), c);
  });

metricsFlags(program.command('exporter'))
  .description(
    "serve the fleet's queue-wide metrics (pyexec_queue_jobs, bullmq_job_count, oldest waiting job, overdue approvals) on /metrics: run one per fleet; alerts and KEDA read it",
  )
  .action(async (o: PortFlags) => {
    const c = await config();
    applyPortFlags(c, o);
    const { Fleet } = await import('../workers/fleet.js');
    const fleet = await Fleet.start({
      config: c,
      redisUrl: await redisUrl(c),
      stages: [],
      logger: await logger(),
      queueMetrics: true,
      bullmqMetrics: true,
    });
    await onShutdown((grace) => fleet.close(grace), c);
  });

program
  .command('submit')
  .description('submit a request (JSON, from a file or stdin); with --wait, print its output live and then its outcome')
  .argument('[file]', 'request JSON file, or - for stdin', '-')
  .option('--wait', "wait for the response, printing the code's stdout and stderr as it runs")
  .option('--json', 'print one JSON document (snake_case) at the end, nothing live')
  .option('--timeout <seconds>', 'how long --wait waits', '600')
  .action(async (file: string, o: { wait?: boolean; json?: boolean; timeout: string }) => {
    let input: unknown;
    try {
      input = JSON.parse(await readInput(file));
    } catch (err) {
      throw new ServiceError(`the request is not valid JSON: ${(err as Error).message}`);
    }
    const { submitCommand } = await import('./submit-command.js');
    await withClient(async (client) => {
      process.exitCode = await submitCommand(client, input, {
        wait: Boolean(o.wait),
        json: Boolean(o.json),
        timeoutSeconds: Number(o.timeout),
      });
    });
  });

program
  .command('api')
  .description('the producer HTTP API (submit, wait, events, cancel, list; OpenAPI at /v1/openapi.json)')
  .command('serve')
  .description('run the producer HTTP API in this process')
  .option('--port <port>', 'port; 0: any free port (default: pyexec.api.port, 8471)', portFlag('--port'))
  .option('--host <host>', 'interface (default: pyexec.api.host, 127.0.0.1)')
  .action(async (o: { port?: number | 'off'; host?: string }) => {
    const c = await config();
    applyPortFlags(c, { ...(o.port !== undefined ? { apiPort: o.port } : {}), ...(o.host ? { apiHost: o.host } : {}) });
    const { startProducerApi } = await import('../api/producer-server.js');
    const { createLogger } = await import('../logger.js');
    const api = await startProducerApi({
      config: c,
      redisUrl: await redisUrl(c),
      logger: createLogger({ name: 'pyexec-api' }),
    });
    process.stdout.write(`producer API ${api.url}/v1 (OpenAPI ${api.url}/v1/openapi.json). Ctrl-C to stop.\n`);
    await onShutdown(() => api.close(), c);
  });

program
  .command('status')
  .description('queue depths per stage, or one request')
  .argument('[requestId]')
  .option('--json', 'print JSON')
  .action(async (requestId: string | undefined, o: { json?: boolean }) => {
    const c = await config();
    const { statusCommand } = await import('./status-command.js');
    process.exitCode = await statusCommand(requestId, {
      json: Boolean(o.json),
      config: c,
      redisUrl: await redisUrl(c),
    });
  });

program
  .command('cancel')
  .description('cancel a request (a running execution is interrupted)')
  .argument('<requestId>')
  .action(async (requestId: string) => {
    await withClient(async (client) => {
      if (!(await client.cancel(requestId))) throw new ServiceError(`no request ${requestId}`);
      process.stdout.write(`cancel requested: ${requestId}\n`);
    });
  });

registerApprovalsCommands(program, globals);

program
  .command('analyze')
  .description('run the static analysis on a Python file (- for stdin)')
  .argument('<file>')
  .option('--json', 'print {"syntax_ok","has_writes","has_reads","risk","findings"}')
  .action(async (file: string, o: { json?: boolean }) => {
    const { analyzeCommand } = await import('./analyze-command.js');
    process.exitCode = await analyzeCommand(file, { json: Boolean(o.json), config: await config() });
  });

program
  .command('doctor')
  .description('check that kernels on this machine confine themselves as configured (Landlock), and that it holds')
  .option('--json', 'print the probe and the self-test as JSON')
  .action(async (o: { json?: boolean }) => {
    const { doctorCommand } = await import('./doctor-command.js');
    process.exitCode = await doctorCommand({ json: Boolean(o.json), config: await config() });
  });

program
  .command('demo')
  .description(
    'bring up a private fleet, submit sample requests (one needs approval), approve it, print progress and results',
  )
  .addOption(new Option('--no-ioc', 'do not start the soft IOC').hideHelp())
  .action(async () => {
    const { demoCommand } = await import('./demo-command.js');
    // The demo prints its own progress: the fleet's logs only from warnings up, unless asked for.
    const { createLogger } = await import('../logger.js');
    const log = createLogger({ level: process.env['PYEXEC_LOG_LEVEL'] ?? 'warn' });
    process.exitCode = await demoCommand(globals(), await config(), log);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const e = err as Error;
  process.stderr.write(`pyexec: ${e.message}\n`);
  process.exitCode =
    err instanceof ServiceError && (err.kind === 'configuration' || err.kind === 'invalid_input') ? 2 : 1;
}
