// Compiles the producer client (src/client/index.ts and what it imports) to packages/client/dist
// with type declarations: the @pyexec/client package (`npm pack packages/client` runs this).
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'packages', 'client', 'dist');
rmSync(out, { recursive: true, force: true });
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const res = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.client.json')], { stdio: 'inherit' });
if (res.status !== 0) process.exit(res.status ?? 1);
// The package is the client alone: a fleet module here means an import went the wrong way.
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.js')) files.push(path.relative(out, p));
  }
};
walk(out);
const fleet = files.filter((f) => /^(workers|cli|api|approval|generators|analysis)\/|^config\.js$/.test(f));
if (fleet.length) {
  console.error(`build-client: fleet modules in the client package: ${fleet.join(', ')}`);
  process.exit(1);
}
