// Compiles src/ to dist/ (tsc -p tsconfig.build.json), copies the approver page's static files, and
// writes dist/.build-stamp. bin/pyexec.js runs dist/ while the stamp is newer than every file under
// src/. Incremental: a second run with nothing changed takes about a second.
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const started = new Date();
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const res = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (res.status !== 0) process.exit(res.status ?? 1);
const web = path.join(root, 'dist', 'approval', 'web');
rmSync(web, { recursive: true, force: true });
cpSync(path.join(root, 'src', 'approval', 'web'), web, { recursive: true });
// The stamp carries the time the build started: a source saved during the build counts as newer.
const stamp = path.join(root, 'dist', '.build-stamp');
writeFileSync(stamp, `${started.toISOString()}\n`);
utimesSync(stamp, started, started);
