#!/usr/bin/env node
// The `pyexec` command. Runs the compiled CLI in dist/ (built by scripts/setup.sh or `npm run build`).
// The TypeScript sources run through tsx instead when PYEXEC_DEV=1, when there is no build, or when
// a file under src/ is newer than the build (an edited checkout never runs stale code).
import { readdirSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);

function mtime(url) {
  try {
    return statSync(url).mtimeMs;
  } catch {
    return -1;
  }
}

/** Whether any file under `dir` changed after `since` (a walk of stat calls: about a millisecond). */
function changedSince(dir, since) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const url = new URL(entry.name + (entry.isDirectory() ? '/' : ''), dir);
    if (entry.isDirectory() ? changedSince(url, since) : mtime(url) > since) return true;
  }
  return false;
}

async function runSources() {
  try {
    const { register } = await import('tsx/esm/api');
    register();
  } catch {
    return false; // no tsx (a production install): the build is all there is
  }
  await import('../src/cli/main.ts');
  return true;
}

const built = mtime(new URL('dist/.build-stamp', root));
const dev =
  process.env.PYEXEC_DEV === '1' ||
  built < 0 ||
  (mtime(new URL('src/', root)) >= 0 && changedSince(new URL('src/', root), built));
if (!(dev && (await runSources()))) await import('../dist/cli/main.js');
