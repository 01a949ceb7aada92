/**
 * The client as another Node service gets it: `npm pack packages/client` (which compiles
 * src/client to JavaScript with type declarations), installed into a scratch project outside the
 * repository, imported by its package name through the `exports` map, type-checked by tsc as a
 * consumer would, and run against a fleet with nothing but a Redis URL and the key prefix.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { projectRoot } from '../../src/python-env.js';
import { sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';
import { ScriptedGenerator } from '../support/scripted-generator.js';

const run = promisify(execFile);
const scratch = mkdtempSync(path.join(tmpdir(), 'pyexec-consumer-'));
let bed: TestBed;

before(async () => {
  bed = await testBed();
  await bed.startFleet({ generator: new ScriptedGenerator() });
});
after(async () => {
  await bed?.close();
  await stopRedis();
  rmSync(scratch, { recursive: true, force: true });
});

const CONSUMER = `import { PyexecClient, InvalidRequestError } from '@pyexec/client';

const client = await PyexecClient.connect({ redisUrl: process.env.REDIS_URL, prefix: process.env.PREFIX });
try {
  await client.submit({ user_query: '' }).catch((err) => {
    if (!(err instanceof InvalidRequestError)) throw err;
    console.log(JSON.stringify({ invalid: err.code }));
  });
  const { requestId } = await client.submit(JSON.parse(process.env.REQUEST));
  const chunks = [];
  for await (const event of client.stream(requestId)) if (event.type === 'stdout') chunks.push(event.text);
  const res = await client.wait(requestId);
  console.log(JSON.stringify({ kind: res.kind, status: res.response.status, results: res.response.results, stdout: chunks.join('') }));
} finally {
  await client.close();
}
`;

const TYPED = `import { PyexecClient, type PyexecEvent, type WaitResult } from '@pyexec/client';
const client: PyexecClient = new PyexecClient({ redisUrl: 'redis://127.0.0.1:1', prefix: 'pyexec' });
const show = (e: PyexecEvent): string => (e.type === 'stdout' ? e.text : e.type);
const end = (r: WaitResult): string => (r.kind === 'finished' ? r.response.execution_result?.notebook_link ?? '' : r.kind);
void show; void end; void client.close();
declare const r: WaitResult;
// @ts-expect-error: a wait result is a union; only a finished one has a response
void r.response.status;
`;

describe('the client package', () => {
  it('installs from npm pack outside the repository and runs with only a Redis URL and the prefix', {
    timeout: 300_000,
  }, async () => {
    const pkg = path.join(projectRoot, 'packages', 'client');
    const packed = await run('npm', ['pack', '--pack-destination', scratch, '--loglevel=error'], {
      cwd: pkg,
      maxBuffer: 16 * 1024 * 1024,
    });
    const tarball = readdirSync(scratch).find((f) => f.endsWith('.tgz'));
    assert.ok(tarball, packed.stdout);
    const listing = (await run('tar', ['-tzf', path.join(scratch, tarball)])).stdout;
    assert.match(listing, /package\/dist\/client\/index\.js/);
    assert.match(listing, /package\/dist\/client\/index\.d\.ts/);
    assert.doesNotMatch(
      listing,
      /package\/dist\/(workers|cli|api|approval|generators|config)[/.]/,
      'no fleet code in the package',
    );

    const app = path.join(scratch, 'consumer');
    await run('mkdir', ['-p', app]);
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', path.join(scratch, tarball)],
      {
        cwd: app,
        timeout: 240_000,
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    const installed = readdirSync(path.join(app, 'node_modules'));
    for (const heavy of ['openai', 'fastify', '@jupyterlab', '@anthropic-ai', 'pino'])
      assert.ok(!installed.includes(heavy), `${heavy} is not a dependency of the client`);
    // The same versions as the fleet's.
    const root = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8'));
    const client = JSON.parse(readFileSync(path.join(pkg, 'package.json'), 'utf8'));
    for (const [name, range] of Object.entries(client.dependencies)) assert.equal(range, root.dependencies[name], name);

    writeFileSync(path.join(app, 'main.mjs'), CONSUMER);
    // Every import of its declarations resolves: a file of the package, or one of its dependencies.
    const dist = path.join(app, 'node_modules', '@pyexec', 'client', 'dist');
    const declarations = (readdirSync(dist, { recursive: true }) as string[]).filter((f) => f.endsWith('.d.ts'));
    assert.ok(declarations.includes(path.join('client', 'index.d.ts')));
    const bare = new Set<string>();
    for (const file of declarations) {
      const text = readFileSync(path.join(dist, file), 'utf8');
      for (const [, spec] of text.matchAll(/(?:from|import\()\s*['"]([^'"]+)['"]/g)) {
        if (spec!.startsWith('.')) {
          const target = path.resolve(path.dirname(path.join(dist, file)), spec!.replace(/\.js$/, '.d.ts'));
          assert.ok(existsSync(target), `${file}: ${spec} is in the package`);
        } else if (!spec!.startsWith('node:')) bare.add(spec!);
      }
    }
    assert.deepEqual(
      [...bare].sort(),
      Object.keys(client.dependencies).sort(),
      'its declarations use its dependencies',
    );
    // Its declarations type-check a consumer (exports map with types, NodeNext resolution, and
    // skipLibCheck as `tsc --init` sets it: zod's and Node's own declarations are not re-checked,
    // which would take most of this test's time): run beside the consumer's request.
    writeFileSync(path.join(app, 'typed.ts'), TYPED);
    writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          // A Node service has @types/node; the repository's stands in for it.
          typeRoots: [path.join(projectRoot, 'node_modules', '@types')],
          types: ['node'],
        },
        files: ['typed.ts'],
      }),
    );
    const tsc = path.join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const [out, checked] = await Promise.all([
      run('node', ['main.mjs'], {
        cwd: app,
        env: {
          PATH: process.env['PATH'] ?? '',
          REDIS_URL: bed.redisUrl,
          PREFIX: bed.config.pyexec.redis.prefix,
          REQUEST: JSON.stringify(sampleRequest({ execution_folder_name: 'prints' })),
        },
      }),
      run('node', [tsc, '-p', app]).catch((err: { stdout: string }) => err),
    ]);
    const [invalid, result] = out.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(invalid, { invalid: 'request_invalid' });
    assert.equal(result.kind, 'finished');
    assert.equal(result.status, 'succeeded');
    assert.deepEqual(result.results, { lines: 20 });
    assert.match(result.stdout, /line 0\nline 1\n[\s\S]*line 19\n/);
    assert.equal((checked as { stdout: string }).stdout.trim(), '', 'the consumer type-checks');
  });
});
