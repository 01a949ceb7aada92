import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { PyexecClient } from '../client/pyexec-client.js';
import type { Config } from '../config.js';
import { ServiceError } from '../errors.js';
import { createLogger } from '../logger.js';
import { STAGES, type Stage } from '../queues/envelope.js';
import { Fleet } from '../workers/fleet.js';
import { registerApprovalsCommands } from './approvals-command.js';
import { type GlobalOptions, requireRedisUrl, resolveConfig } from './context.js';
import { demoCommand } from './demo-command.js';
import { statusCommand } from './status-command.js';
import { onShutdown, upCommand } from './up-command.js';

const program = new Command('pyexec')
  .description(
    'Python execution service for accelerator control rooms: generate, analyse, approve and run Python on a BullMQ fleet',
  )
  .option('-c, --config <file>', 'config.yml (default: $PYEXEC_CONFIG or ./config.yml)')
  .option('--redis <url>', 'Redis URL (default: config, $PYEXEC_REDIS_URL, or a running `pyexec up`)')
  .showHelpAfterError();

const globals = (): GlobalOptions => program.opts<GlobalOptions>();
const logger = createLogger();

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
  const config = resolveConfig(globals());
  const client = await PyexecClient.connect({ redisUrl: requireRedisUrl(globals(), config), config });
  try {
    return await fn(client, config);
  } finally {
    await client.close();
  }
}

const print = (value: unknown, json: boolean | undefined, text: () => string) =>
  process.stdout.write(`${json ? JSON.stringify(value, null, 2) : text()}\n`);

program
  .command('up')
  .description(
    'run every worker in this process (starts a private redis-server and the soft IOC when none is configured)',
  )
  .option('--stages <stages...>', `stages to run (${STAGES.join(', ')})`)
  .option('--no-ioc', 'do not start the simulated accelerator')
  .option('--generator <name>', 'code generator: basic, claude_code, mock, hybrid or a custom name')
  .option('--base-url <url>', 'OpenAI-compatible endpoint for the basic generator')
  .option('--model <id>', 'model id for the generator')
  .action(async (o: { stages?: Stage[]; ioc: boolean; generator?: string; baseUrl?: string; model?: string }) => {
    const config = resolveConfig(globals());
    applyGeneratorFlags(config, o);
    await upCommand(
      { ...globals(), ioc: o.ioc, ...(o.stages ? { stages: checkStages(o.stages) } : {}) },
      config,
      logger,
    );
  });

function checkStages(stages: string[]): Stage[] {
  for (const s of stages)
    if (!STAGES.includes(s as Stage)) throw new ServiceError(`unknown stage '${s}'; stages: ${STAGES.join(', ')}`);
  return stages as Stage[];
}

program
  .command('worker')
  .description('run the workers of the given stages (one process per stage type scales each on its own)')
  .argument('<stages...>', `one or more of: ${STAGES.join(', ')}`)
  .action(async (stages: string[]) => {
    const config = resolveConfig(globals());
    const fleet = await Fleet.start({
      config,
      redisUrl: requireRedisUrl(globals(), config),
      stages: checkStages(stages),
      logger,
    });
    onShutdown((grace) => fleet.close(grace), config.pyexec.shutdown_grace_ms, logger);
  });

program
  .command('exporter')
  .description(
    "serve the fleet's queue-wide metrics (pyexec_queue_jobs, bullmq_job_count, oldest waiting job, overdue approvals) on /metrics: run one per fleet; alerts and KEDA read it",
  )
  .action(async () => {
    const config = resolveConfig(globals());
    const redisUrl = requireRedisUrl(globals(), config);
    const fleet = await Fleet.start({ config, redisUrl, stages: [], logger, queueMetrics: true, bullmqMetrics: true });
    onShutdown((grace) => fleet.close(grace), config.pyexec.shutdown_grace_ms, logger);
  });

program
  .command('submit')
  .description('submit a request (JSON, from a file or stdin) and optionally wait for its response')
  .argument('[file]', 'request JSON file, or - for stdin', '-')
  .option('--wait', 'wait for the response')
  .option('--json', 'print JSON')
  .option('--timeout <seconds>', 'how long --wait waits', '600')
  .action(async (file: string, o: { wait?: boolean; json?: boolean; timeout: string }) => {
    let input: unknown;
    try {
      input = JSON.parse(await readInput(file));
    } catch (err) {
      throw new ServiceError(`the request is not valid JSON: ${(err as Error).message}`);
    }
    await withClient(async (client) => {
      const sub = await client.submit(input);
      if (!o.wait)
        return print(
          sub,
          o.json,
          () => `${sub.created ? 'submitted' : 'already submitted'}: ${sub.requestId} (thread ${sub.threadId})`,
        );
      const res = await client.wait(sub.requestId, {
        timeoutMs: Number(o.timeout) * 1000,
        returnOnApproval: true,
        onEvent: (e) => !o.json && e.status && process.stderr.write(`${e.status}\n`),
      });
      if (res.kind === 'approval_required') {
        print(
          res,
          o.json,
          () =>
            `approval required: held job ${res.holdJobId} (${res.reason}); approve with: pyexec approvals approve ${res.holdJobId}`,
        );
        process.exitCode = 3;
        return;
      }
      if (res.kind === 'timeout') {
        print(res, o.json, () => `still ${res.snapshot?.status ?? 'unknown'} after ${o.timeout}s: ${sub.requestId}`);
        process.exitCode = 4;
        return;
      }
      print(
        res.response,
        o.json,
        () =>
          `${res.response.status}${res.response.reason ? `: ${res.response.reason}` : ''}\nresults: ${JSON.stringify(res.response.results)}\nnotebook: ${res.response.notebook_path ?? '-'}`,
      );
      if (res.response.status !== 'succeeded') process.exitCode = 1;
    });
  });

program
  .command('status')
  .description('queue depths per stage, or one request')
  .argument('[requestId]')
  .option('--json', 'print JSON')
  .action(async (requestId: string | undefined, o: { json?: boolean }) => {
    const config = resolveConfig(globals());
    process.exitCode = await statusCommand(requestId, {
      json: Boolean(o.json),
      config,
      redisUrl: requireRedisUrl(globals(), config),
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
    process.exitCode = await analyzeCommand(file, { json: Boolean(o.json), config: resolveConfig(globals()) });
  });

program
  .command('demo')
  .description(
    'bring up a private fleet, submit sample requests (one needs approval), approve it, print progress and results',
  )
  .addOption(new Option('--no-ioc', 'do not start the soft IOC').hideHelp())
  .action(async () => {
    process.exitCode = await demoCommand(globals(), resolveConfig(globals()), logger);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const e = err as Error;
  process.stderr.write(`pyexec: ${e.message}\n`);
  process.exitCode =
    err instanceof ServiceError && (err.kind === 'configuration' || err.kind === 'invalid_input') ? 2 : 1;
}
