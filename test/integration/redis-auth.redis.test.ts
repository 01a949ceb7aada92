/**
 * A configured Redis with an ACL user, a password and TLS (issue 13: secrets out of reach): a real
 * redis-server with `user default off`, a `pyexec` user, and only a TLS port, its certificate signed
 * by a CA this test makes with openssl (trusted through NODE_EXTRA_CA_CERTS, as an operator would).
 * The whole fleet (`pyexec up` on `rediss://pyexec:…@…`) runs a request; a wrong password is a clear
 * error that never prints the password.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '../../src/free-port.js';
import { projectRoot } from '../../src/python-env.js';
import { sampleRequest } from '../support/harness.js';

const exec = promisify(execFile);
const bin = path.join(projectRoot, 'bin/pyexec.js');
const dir = mkdtempSync(path.join(tmpdir(), 'pyexec-redis-tls-'));
const PASSWORD = 'acl-user-secret-4f1c';
let server: ChildProcess;
let port: number;

async function openssl(args: string[]) {
  await exec('openssl', args, { cwd: dir });
}

before(async () => {
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '1',
    '-subj',
    '/CN=pyexec-test-ca',
  ]);
  await openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'redis.key',
    '-out',
    'redis.csr',
    '-subj',
    '/CN=127.0.0.1',
  ]);
  writeFileSync(path.join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1\n');
  await openssl([
    'x509',
    '-req',
    '-in',
    'redis.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'redis.crt',
    '-days',
    '1',
    '-extfile',
    'ext',
  ]);
  writeFileSync(path.join(dir, 'acl.conf'), `user default off\nuser pyexec on >${PASSWORD} ~* &* +@all\n`, {
    mode: 0o600,
  });
  port = await freePort();
  server = spawn(
    'redis-server',
    [
      path.join(dir, 'acl.conf'),
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--tls-cert-file',
      path.join(dir, 'redis.crt'),
      '--tls-key-file',
      path.join(dir, 'redis.key'),
      '--tls-ca-cert-file',
      path.join(dir, 'ca.crt'),
      '--tls-auth-clients',
      'no',
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
      '--dir',
      dir,
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    const ok = await exec('redis-cli', [
      '--tls',
      '--cacert',
      path.join(dir, 'ca.crt'),
      '-p',
      String(port),
      '--user',
      'pyexec',
      '--pass',
      PASSWORD,
      '--no-auth-warning',
      'ping',
    ])
      .then((r) => r.stdout.includes('PONG'))
      .catch(() => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('redis-server with TLS did not start');
});

after(() => {
  server?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const url = (password: string) => `rediss://pyexec:${password}@127.0.0.1:${port}`;

async function pyexec(args: string[], env: Record<string, string>, input?: string) {
  const child = exec('node', [bin, ...args], {
    timeout: 180_000,
    env: { ...process.env, PYEXEC_LOG_LEVEL: 'warn', NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.crt'), ...env },
  });
  if (input !== undefined) child.child.stdin?.end(input);
  try {
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('a configured Redis with an ACL user, a password and TLS (rediss://)', () => {
  it('runs the whole fleet: pyexec up on it, and a submitted request succeeds', async () => {
    const config = path.join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        execution: { code_generator: 'mock', execution_method: 'local' },
        approval: { global_mode: 'disabled' },
        pyexec: {
          redis: { prefix: 'tls-test' },
          execution_root: path.join(dir, 'runs'),
          metrics_port: 0,
          approver: { port: 0 },
        },
      }),
    );
    const env = {
      PYEXEC_CONFIG: config,
      PYEXEC_REDIS_URL: url(PASSWORD),
      PYEXEC_STATE_DIR: path.join(dir, 'state'),
      NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.crt'),
    };
    const up = spawn('node', [bin, 'up', '--no-ioc'], {
      env: { ...process.env, PYEXEC_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      await new Promise<void>((resolve, reject) => {
        up.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('pyexec is up')) resolve();
        });
        up.stderr!.on('data', (d: Buffer) => (out += d.toString()));
        up.once('exit', (code) => reject(new Error(`up exited (${code}): ${out}`)));
      });
      assert.ok(!out.includes(PASSWORD), 'up printed the password');
      const r = await pyexec(['submit', '-', '--wait', '--json'], env, JSON.stringify(sampleRequest()));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).status, 'succeeded');
    } finally {
      up.kill('SIGKILL');
    }
  });

  it('a wrong password is a clear error naming the server, never the password', async () => {
    const wrong = 'not-the-password-93a';
    const r = await pyexec(['status', '--redis', url(wrong)], {});
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /Redis unreachable at rediss:\/\/pyexec:\*\*\*@127\.0\.0\.1/);
    assert.match(r.stderr, /WRONGPASS|invalid username-password/);
    assert.ok(!r.stderr.includes(wrong));
  });
});
