/**
 * The listening ports of a fleet process, on a real Redis and real sockets: the metrics server and
 * the approver API bind loopback unless told otherwise, the metrics server is off with
 * `metrics_port: null`, a port in use is an error that names the setting (not a bare EADDRINUSE),
 * and `pyexec up` takes its ports from flags (a separate process, as people run it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startApproverApi } from '../../src/approval/http/server.js';
import { ConfigError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { projectRoot } from '../../src/python-env.js';
import { Fleet } from '../../src/workers/fleet.js';
import { stopRedis, type TestBed, testBed } from '../support/harness.js';

const exec = promisify(execFile);
let bed: TestBed | undefined;
let blocker: Server | undefined;
after(() => stopRedis());
afterEach(async () => {
  await bed?.close();
  bed = undefined;
  await new Promise((r) => (blocker ? blocker.close(r) : r(undefined)));
  blocker = undefined;
});

/** Holds a loopback port, as another program would. */
async function busyPort(): Promise<number> {
  blocker = createServer();
  await new Promise<void>((resolve) => blocker!.listen(0, '127.0.0.1', resolve));
  return (blocker.address() as { port: number }).port;
}

describe('listening ports', () => {
  it('the metrics server binds loopback by default, and none starts with metrics_port: null', async () => {
    bed = await testBed();
    const on = await bed.startFleet({ stages: [], metricsPort: 0 });
    assert.ok(on.metricsPort! > 0);
    const res = await fetch(`http://127.0.0.1:${on.metricsPort}/healthz`);
    assert.equal(res.status, 200);
    // Bound to 127.0.0.1 only: the same port on another local address is refused.
    await assert.rejects(fetch(`http://127.0.0.2:${on.metricsPort}/healthz`));

    const off = await Fleet.start({
      config: { ...bed.config, pyexec: { ...bed.config.pyexec, metrics_port: null } },
      redisUrl: bed.redisUrl,
      logger: silentLogger(),
      stages: [],
    });
    bed.fleets.push(off);
    assert.equal(off.metricsPort, null);
  });

  it('a metrics port in use is a configuration error naming pyexec.metrics_port', async () => {
    bed = await testBed();
    const port = await busyPort();
    const err = await bed.startFleet({ stages: [], metricsPort: port }).catch((e: unknown) => e);
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /^pyexec\.metrics_port .*: port \d+ on 127\.0\.0\.1 is already in use/);
  });

  it('an approver port in use is a configuration error naming pyexec.approver.port; null refuses to serve', async () => {
    bed = await testBed();
    const port = await busyPort();
    const err = await startApproverApi({ config: bed.config, redisUrl: bed.redisUrl, port }).catch((e: unknown) => e);
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /^pyexec\.approver\.port .*: port \d+ on 127\.0\.0\.1 is already in use/);
    const off = {
      ...bed.config,
      pyexec: { ...bed.config.pyexec, approver: { ...bed.config.pyexec.approver, port: null } },
    };
    await assert.rejects(startApproverApi({ config: off, redisUrl: bed.redisUrl }), /pyexec\.approver\.port: null/);
  });

  it('pyexec up takes its ports from flags: a busy one stops it with the setting named, off turns one off', async () => {
    bed = await testBed();
    const port = await busyPort();
    const run = (args: string[]) =>
      exec('node', [path.join(projectRoot, 'bin/pyexec.js'), '--redis', bed!.redisUrl, ...args], {
        env: { ...process.env, PYEXEC_LOG_LEVEL: 'warn' },
        timeout: 120_000,
      }).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
    const busy = await run(['up', '--no-ioc', '--stages', 'result', '--metrics-port', String(port)]);
    assert.equal(busy.code, 2, busy.stderr);
    assert.match(
      busy.stderr,
      /pyexec: pyexec\.metrics_port .*--metrics-port.*: port \d+ on 127\.0\.0\.1 is already in use/,
    );

    const bad = await run(['up', '--no-ioc', '--metrics-port', 'ninety']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--metrics-port: expected a port number/);

    const approverBusy = await run([
      'up',
      '--no-ioc',
      '--stages',
      'result',
      '--metrics-port',
      'off',
      '--approver-port',
      String(port),
    ]);
    assert.equal(approverBusy.code, 2, approverBusy.stderr);
    assert.match(approverBusy.stderr, /pyexec\.approver\.port .*: port \d+ on 127\.0\.0\.1 is already in use/);
  });
});
