import { readFile } from 'node:fs/promises';
import { createAnalyzer, formatReport, toCliJson } from '../analysis/index.js';
import type { Config } from '../config.js';

export interface AnalyzeCommandOptions {
  readonly json: boolean;
  readonly config: Config;
  /** Where `-` reads from. @defaultValue process.stdin */
  readonly stdin?: NodeJS.ReadableStream;
  readonly stdout?: NodeJS.WritableStream;
  readonly stderr?: NodeJS.WritableStream;
}

/**
 * `pyexec analyze FILE [--json]`: the static analysis alone. Returns the exit code: 0 when the
 * program was analysed (whatever the verdict), 1 when the analysis could not finish (too large, timed
 * out), 2 when FILE cannot be read.
 */
export async function analyzeCommand(file: string, opts: AnalyzeCommandOptions): Promise<number> {
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  let code: string;
  try {
    code = file === '-' ? await readAll(opts.stdin ?? process.stdin) : await readFile(file, 'utf8');
  } catch (err) {
    stderr.write(`pyexec analyze: cannot read ${file === '-' ? 'standard input' : file}: ${(err as Error).message}\n`);
    return 2;
  }
  const analyzer = createAnalyzer(opts.config);
  try {
    const report = await analyzer.analyze(code);
    stdout.write(opts.json ? `${JSON.stringify(toCliJson(report))}\n` : formatReport(report, code));
    return 0;
  } catch (err) {
    stderr.write(`pyexec analyze: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await analyzer.close();
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}
