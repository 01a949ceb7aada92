/**
 * Runs every unit test file not listed in own-process.txt, in this one process (scripts/test.sh
 * runs the listed ones each in a process of its own). Files are found, not listed, so a new unit
 * test file runs without being added anywhere; one that fails to load fails this file.
 * Running one unit file alone still works: `node --import tsx --test test/unit/x.test.ts`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const here = import.meta.dirname;
const self = path.basename(import.meta.filename);
const ownProcess = new Set(
  readFileSync(path.join(here, 'own-process.txt'), 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean),
);
const shared = (readdirSync(here, { recursive: true }) as string[])
  .map((f) => f.split(path.sep).join('/'))
  .filter((f) => f.endsWith('.test.ts') && f !== self && !ownProcess.has(f))
  .sort();
for (const listed of ownProcess)
  if (!existsSync(path.join(here, listed))) throw new Error(`test/unit/own-process.txt names ${listed}: no such file`);
for (const file of shared) await import(pathToFileURL(path.join(here, file)).href);
