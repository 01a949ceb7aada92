/**
 * The fleet's logs as an SRE reads them: one info line per stage transition with the request id,
 * thread id, stage, outcome and duration (a request run end to end on a real Redis), JSON when
 * stderr is not a terminal and pino-pretty lines when it is (a worker process under a real
 * pseudo-terminal, through util-linux `script`).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, afterEach, describe, it } from 'node:test';
import { createLogger } from '../../src/logger.js';
import { projectRoot } from '../../src/python-env.js';
import { sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';

let bed: TestBed | undefined;
let child: ChildProcess | undefined;
after(() => stopRedis());
afterEach(async () => {
  await bed?.close();
  bed = undefined;
  if (child && child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
  child = undefined;
});

interface Line {
  level: number;
  msg: string;
  requestId?: string;
  threadId?: string;
  stage?: string;
  outcome?: string;
  durationMs?: number;
}

/** Output of `cmd` (run under a pseudo-terminal when `tty`) until `until` matches; then the process is killed. */
async function outputOf(args: string[], tty: boolean, until: RegExp): Promise<string> {
  const node = [process.execPath, path.join(projectRoot, 'bin/pyexec.js'), ...args];
  const env = { ...process.env, PYEXEC_LOG_LEVEL: 'info', PYEXEC_LOG_FORMAT: '' };
  // Its own process group, so that the worker under `script` goes with it.
  const c = tty
    ? spawn('script', ['-qfec', node.map((a) => `'${a}'`).join(' '), '/dev/null'], { env, detached: true })
    : spawn(node[0]!, node.slice(1), { env, detached: true });
  child = c;
  let out = '';
  const exited = new Promise((r) => c.once('exit', r));
  try {
    await new Promise<void>((resolve, reject) => {
      const take = (d: Buffer) => {
        out += d.toString();
        if (until.test(out)) resolve();
      };
      c.stdout!.on('data', take);
      c.stderr!.on('data', take);
      c.once('exit', (code) => reject(new Error(`exited (${code}) before ${until}: ${out}`)));
    });
  } finally {
    process.kill(-c.pid!, 'SIGKILL');
    await exited;
  }
  return out;
}

describe('logs', () => {
  it('one info line per stage transition: request id, thread id, stage, outcome, duration', async () => {
    const stream = new PassThrough();
    const lines: Line[] = [];
    stream.on('data', (d: Buffer) => {
      for (const l of d.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Line);
    });
    bed = await testBed();
    await bed.startFleet({ logger: createLogger({ destination: stream, pretty: false, level: 'info' }) });
    const { requestId } = await bed.client.submit(sampleRequest({ thread_id: 'agent-7-step-2' }));
    const res = await bed.client.wait(requestId, { timeoutMs: 60_000 });
    assert.equal(res.kind, 'finished');
    await new Promise((r) => setTimeout(r, 200));
    const transitions = lines.filter((l) => l.requestId === requestId && l.outcome !== undefined);
    assert.deepEqual(
      transitions.map((l) => l.stage),
      ['generation', 'analysis', 'execution', 'result'],
      JSON.stringify(transitions),
    );
    for (const l of transitions) {
      assert.equal(l.level, 30, 'info');
      assert.equal(l.threadId, 'agent-7-step-2');
      assert.ok(typeof l.durationMs === 'number' && l.durationMs >= 0);
      assert.equal(l.msg, `${l.stage} ${l.outcome}`);
    }
    assert.equal(transitions.at(-1)!.outcome, 'succeeded');
    // Generated code never reaches the log, at any level.
    assert.equal(
      lines.some((l) => JSON.stringify(l).includes('result_value = 42')),
      false,
    );
  });

  it('is JSON when stderr is not a terminal and pino-pretty on a terminal', async () => {
    bed = await testBed();
    const args = ['--redis', bed.redisUrl, 'worker', 'result', '--metrics-port', 'off'];
    const json = await outputOf(args, false, /fleet process running/);
    const line = json.split('\n').find((l) => l.includes('fleet process running'))!;
    assert.equal((JSON.parse(line) as Line).level, 30);

    const pretty = await outputOf(args, true, /fleet process running/);
    const prettyLine = pretty.split('\n').find((l) => l.includes('fleet process running'))!;
    assert.doesNotMatch(prettyLine, /^\s*\{/);
    assert.match(prettyLine, /\[\d\d:\d\d:\d\d\.\d{3}\] .*INFO.* \(pyexec\): .*fleet process running/);
  });
});
