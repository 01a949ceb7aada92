/**
 * deploy/ and docker-compose.yml, checked as CI can without a Docker engine or a cluster: the
 * compose file against the compose-spec schema (check-jsonschema), the Kubernetes manifests
 * against the schemas of a Kubernetes release (kubernetes-validate --strict) and KEDA's CRD types,
 * the alert rules and scrape config with promtool (its rule unit tests included), and what no
 * schema knows: every config parses with pyexec's own schema, every metric a rule, dashboard or
 * KEDA query names exists, the approval hold is never autoscaled, grace periods outlast runs.
 * The tools come from scripts/setup.sh (.venv/deploy-tools).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { type Config, parseConfig } from '../../src/config.js';
import { kernelPoolSettings } from '../../src/executors/pool-config.js';
import { Metrics } from '../../src/metrics.js';
import { projectRoot } from '../../src/python-env.js';
import { QueueName, STAGES } from '../../src/queues/envelope.js';

const run = promisify(execFile);
const tools = process.env['PYEXEC_DEPLOY_TOOLS_DIR'] ?? path.join(projectRoot, '.venv/deploy-tools/bin');
const at = (...p: string[]) => path.join(projectRoot, ...p);
const k8sDir = at('deploy/kubernetes');
const scratch = mkdtempSync(path.join(tmpdir(), 'pyexec-deploy-'));

// biome-ignore lint/suspicious/noExplicitAny: manifests are untyped YAML, read field by field
type Doc = Record<string, any>;

/** Runs a validation tool; resolves with its output, or rejects with it (and the exit code). */
async function tool(name: string, args: string[], cwd = projectRoot): Promise<string> {
  const bin = path.join(tools, name);
  assert.ok(existsSync(bin), `${bin} is missing: run bash scripts/setup.sh`);
  try {
    const { stdout, stderr } = await run(bin, args, { cwd, timeout: 120_000 });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    throw new Error(`${name} ${args.join(' ')} exited ${e.code}:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

const yamlDocs = (file: string): Doc[] =>
  parseAllDocuments(readFileSync(file, 'utf8'), { merge: true })
    .map((d) => d.toJS() as Doc)
    .filter(Boolean);
const compose = parseYaml(readFileSync(at('docker-compose.yml'), 'utf8'), { merge: true }) as Doc;
const k8s = readdirSync(k8sDir)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .flatMap((f) => yamlDocs(path.join(k8sDir, f)).map((doc) => ({ file: f, doc })));
const ofKind = (kind: string) => k8s.filter((x) => x.doc['kind'] === kind).map((x) => x.doc);
const env = {
  PYEXEC_REDIS_URL: 'redis://:password@redis:6379',
  JUPYTER_TOKEN: 'token',
  JUPYTER_TOKEN_READ: 'read-token',
  JUPYTER_TOKEN_WRITE: 'write-token',
};
const k8sConfig = (): Config => {
  const cm = ofKind('ConfigMap').find((c) => c['metadata'].name === 'pyexec-config')!;
  return parseConfig(parseYaml(cm['data']['config.yml']), env);
};
const seconds = (d: string) => {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(d)!;
  return Number(m[1]) * ({ ms: 0.001, s: 1, m: 60, h: 3600 } as Record<string, number>)[m[2] ?? 's']!;
};
/** pyexec_* (and bullmq_*) metric names in a PromQL text. */
const metricNames = (promql: string) => [...promql.matchAll(/\b((?:pyexec|bullmq)_[a-z_]+)/g)].map((m) => m[1]!);

describe('docker-compose.yml', () => {
  it('validates against the compose-spec schema (check-jsonschema, no Docker engine)', async () => {
    const out = await tool('check-jsonschema', ['--builtin-schema', 'vendor.compose-spec', at('docker-compose.yml')]);
    assert.match(out, /validation done/);
  });

  it('is refused by the same check when it is broken (the check can fail)', async () => {
    const broken = path.join(scratch, 'compose-broken.yml');
    writeFileSync(
      broken,
      readFileSync(at('docker-compose.yml'), 'utf8').replace('stop_grace_period: 180s', 'stop_grace_period: [180]'),
    );
    await assert.rejects(tool('check-jsonschema', ['--builtin-schema', 'vendor.compose-spec', broken]), /exited 1/);
  });

  it('runs Redis with AOF, noeviction and a password, the IOC, one kernel server per mode, each worker type, exporter, approver, Prometheus and Grafana', () => {
    const services = compose['services'] as Record<string, Doc>;
    const redisCmd = (services['redis']!['command'] as string[]).join(' ');
    assert.match(redisCmd, /--appendonly yes/);
    assert.match(redisCmd, /--maxmemory-policy noeviction/);
    assert.match(redisCmd, /--requirepass \$\{REDIS_PASSWORD/);
    for (const name of ['ioc', 'kernels-read', 'kernels-write', 'exporter', 'approver', 'prometheus', 'grafana'])
      assert.ok(services[name], name);
    assert.equal(services['kernels-read']!['build'].dockerfile, 'deploy/kernel/Dockerfile');
    assert.equal(services['kernels-write']!['image'], services['kernels-read']!['image']);
    // A server per mode: its own kernelspec, token and Channel Access endpoint.
    const read = services['kernels-read']!['environment'];
    const write = services['kernels-write']!['environment'];
    assert.equal(read.PYEXEC_KERNEL_NAMES, 'python3-epics-readonly');
    assert.equal(write.PYEXEC_KERNEL_NAMES, 'python3-epics-write');
    assert.notEqual(read.JUPYTER_TOKEN, write.JUPYTER_TOKEN);
    assert.notEqual(read.EPICS_CA_SERVER_PORT, write.EPICS_CA_SERVER_PORT);
    assert.match(JSON.stringify(services['ioc']!['entrypoint']), /--read-only-port/);
    for (const stage of STAGES) {
      const svc = Object.entries(services).filter(
        ([, s]) => JSON.stringify(s['command']) === JSON.stringify(['worker', stage]),
      );
      assert.equal(svc.length, 1, `one service runs worker ${stage}`);
      const [, s] = svc[0]!;
      // Scalable with --scale: no fixed name, no host port.
      assert.equal(s['container_name'], undefined);
      assert.equal(s['ports'], undefined);
      assert.ok(s['healthcheck']?.test.join(' ').includes('/readyz'));
    }
    for (const [name, s] of Object.entries(services)) {
      for (const dep of Object.keys(
        Array.isArray(s['depends_on'])
          ? Object.fromEntries(s['depends_on'].map((d: string) => [d, 1]))
          : (s['depends_on'] ?? {}),
      )) {
        assert.ok(services[dep], `${name} depends on ${dep}, which is not a service`);
      }
      for (const v of (s['volumes'] ?? []) as string[]) {
        const source = v.split(':')[0]!;
        if (source.startsWith('./'))
          assert.ok(existsSync(at(source)), `${name} mounts ${source}, which does not exist`);
        else assert.ok(source in (compose['volumes'] ?? {}), `${name} uses volume ${source}, which is not declared`);
      }
    }
  });

  it('mounts a config that pyexec accepts, and stops execution workers later than a run can last', () => {
    const config = parseConfig(parseYaml(readFileSync(at('deploy/config/compose.yml'), 'utf8')), env);
    assert.equal(config.execution.execution_method, 'container');
    const servers = kernelPoolSettings(config).servers;
    assert.deepEqual(
      servers.map((s) => [s.name, s.modes]),
      [
        ['kernels-read', ['read_only']],
        ['kernels-write', ['write_access']],
      ],
    );
    assert.notEqual(servers[0]!.token, servers[1]!.token);
    assert.equal(config.execution.confinement, 'landlock');
    const timeout = config.python_executor.execution_timeout_seconds;
    assert.ok(config.pyexec.shutdown_grace_ms / 1000 > timeout, 'the drain outlasts a run');
    const exec = (compose['services'] as Record<string, Doc>)['execution']!;
    assert.ok(seconds(exec['stop_grace_period']) > timeout, 'Docker waits longer than a run');
  });
});

describe('deploy/kubernetes', () => {
  const manifests = readdirSync(k8sDir).filter(
    (f) => f.endsWith('.yaml') && !['kustomization.yaml', 'keda.yaml', 'monitoring.yaml'].includes(f),
  );

  it('validates against the Kubernetes schemas, strictly (kubernetes-validate)', async () => {
    const out = await tool('kubernetes-validate', ['--strict', ...manifests], k8sDir);
    assert.doesNotMatch(out, /ERROR|WARN/);
    assert.equal(
      (out.match(/ passed for resource /g) ?? []).length,
      k8s.filter((x) => !['keda.yaml', 'monitoring.yaml'].includes(x.file)).length,
    );
  });

  it('validates the KEDA ScaledObjects and the Prometheus operator resources against their CRD types, unknown fields included', async () => {
    const out = await tool('python', [
      at('deploy/validate/crd_objects.py'),
      path.join(k8sDir, 'keda.yaml'),
      path.join(k8sDir, 'monitoring.yaml'),
    ]);
    const kinds = ['ScaledObject', 'PrometheusRule', 'PodMonitor'];
    assert.equal((out.match(/ is valid/g) ?? []).length, kinds.flatMap(ofKind).length);
    assert.ok(ofKind('PrometheusRule').length === 1 && ofKind('PodMonitor').length === 2);
  });

  it('ships the alert rules as a PrometheusRule with exactly the groups of deploy/prometheus/alerts.yml', () => {
    const alerts = parseYaml(readFileSync(at('deploy/prometheus/alerts.yml'), 'utf8')) as Doc;
    assert.deepEqual(ofKind('PrometheusRule')[0]!['spec'].groups, alerts['groups']);
  });

  it('labels every scraped pod as compose does: job pyexec / pyexec-approver and service = its component', () => {
    const pods = [...ofKind('Deployment'), ...ofKind('StatefulSet')].map((d) => d['spec'].template);
    const component = (t: Doc) => t['metadata'].labels['app.kubernetes.io/component'] as string;
    const monitors = ofKind('PodMonitor');
    const scrapedBy = (t: Doc) =>
      monitors.filter((m) => {
        const sel = m['spec'].selector;
        const labels = t['metadata'].labels as Record<string, string>;
        return (
          Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
          (sel.matchExpressions ?? []).every((e: Doc) => e['values'].includes(labels[e['key']]))
        );
      });
    const expected: Record<string, string> = {
      generation: 'pyexec',
      analysis: 'pyexec',
      'approval-hold': 'pyexec',
      execution: 'pyexec',
      result: 'pyexec',
      exporter: 'pyexec',
      approver: 'pyexec-approver',
    };
    for (const t of pods) {
      const c = component(t);
      const by = scrapedBy(t);
      if (!(c in expected)) {
        assert.equal(by.length, 0, `${c} serves no pyexec metrics`);
        continue;
      }
      assert.equal(by.length, 1, c);
      const endpoint = by[0]!['spec'].podMetricsEndpoints[0];
      assert.ok(
        t['spec'].containers.some((k: Doc) => k['ports']?.some((p: Doc) => p['name'] === endpoint.port)),
        `${c} has the port ${endpoint.port}`,
      );
      const relabel = endpoint.relabelings as Doc[];
      assert.ok(relabel.some((r) => r['targetLabel'] === 'job' && r['replacement'] === expected[c]));
      assert.ok(
        relabel.some(
          (r) =>
            r['targetLabel'] === 'service' &&
            r['sourceLabels'][0] === '__meta_kubernetes_pod_label_app_kubernetes_io_component',
        ),
      );
    }
    // The compose side names its services the same way.
    assert.deepEqual(
      Object.keys(expected)
        .filter((c) => expected[c] === 'pyexec')
        .sort(),
      [
        ...(parseYaml(readFileSync(at('deploy/prometheus/prometheus.yml'), 'utf8')) as Doc)['scrape_configs'][0]
          .dns_sd_configs[0].names,
      ].sort(),
    );
  });

  it('is refused by the same checks when a manifest is broken (the checks can fail)', async () => {
    const deploy = path.join(scratch, 'workers-broken.yaml');
    writeFileSync(
      deploy,
      readFileSync(path.join(k8sDir, 'workers.yaml'), 'utf8').replace(
        'terminationGracePeriodSeconds: 660',
        'terminationGracePeriodSecond: 660',
      ),
    );
    await assert.rejects(tool('kubernetes-validate', ['--strict', deploy]), /exited 1/);
    const keda = path.join(scratch, 'keda-broken.yaml');
    writeFileSync(
      keda,
      readFileSync(path.join(k8sDir, 'keda.yaml'), 'utf8').replace('cooldownPeriod', 'coolDownPeriod'),
    );
    await assert.rejects(
      tool('python', [at('deploy/validate/crd_objects.py'), keda]),
      /fields KEDA does not know: spec.coolDownPeriod/,
    );
  });

  it('lists every manifest in the kustomization', () => {
    const kust = parseYaml(readFileSync(path.join(k8sDir, 'kustomization.yaml'), 'utf8')) as Doc;
    assert.deepEqual(
      [...kust['resources']].sort(),
      readdirSync(k8sDir)
        .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
        .sort(),
    );
  });

  it('runs one Deployment per worker type, probed on /healthz and /readyz, with a grace longer than a run', () => {
    const config = k8sConfig();
    const deployments = ofKind('Deployment');
    for (const stage of STAGES) {
      const d = deployments.find(
        (x) => JSON.stringify(x['spec'].template.spec.containers[0].args) === JSON.stringify(['worker', stage]),
      );
      assert.ok(d, `a Deployment runs worker ${stage}`);
      const pod = d['spec'].template.spec;
      const c = pod.containers[0];
      assert.equal(c.livenessProbe.httpGet.path, '/healthz');
      assert.equal(c.readinessProbe.httpGet.path, '/readyz');
      assert.equal(pod.volumes.find((v: Doc) => v['configMap'])?.configMap.name, 'pyexec-config');
      // Kubernetes must not kill a pod before its drain (shutdown_grace_ms) is over.
      assert.ok(
        pod.terminationGracePeriodSeconds > (stage === 'execution' ? config.pyexec.shutdown_grace_ms / 1000 : 30),
        stage,
      );
    }
    const exec = deployments.find((d) => d['metadata'].name === 'pyexec-execution')!;
    assert.ok(
      exec['spec'].template.spec.terminationGracePeriodSeconds > config.python_executor.execution_timeout_seconds,
    );
  });

  it('has a ConfigMap that pyexec accepts, listing exactly the kernel servers of the StatefulSet', () => {
    const config = k8sConfig();
    const sts = ofKind('StatefulSet').find((s) => s['metadata'].name === 'pyexec-kernels')!;
    const expected = Array.from(
      { length: sts['spec'].replicas },
      (_, i) => `http://pyexec-kernels-${i}.${sts['spec'].serviceName}:8888/`,
    );
    assert.deepEqual(
      kernelPoolSettings(config).servers.map((s) => s.url),
      expected,
    );
    assert.ok(
      ofKind('Service').some((s) => s['metadata'].name === sts['spec'].serviceName && s['spec'].clusterIP === 'None'),
    );
  });

  it('scales every stage but the approval hold with KEDA, on its own queue depth, one replica per worker concurrency', () => {
    const config = k8sConfig();
    const deployments = ofKind('Deployment');
    const scaled = ofKind('ScaledObject');
    const stageOf = (deploymentName: string) => {
      const d = deployments.find((x) => x['metadata'].name === deploymentName);
      assert.ok(d, `ScaledObject targets ${deploymentName}, which is not a Deployment`);
      return d['spec'].template.spec.containers[0].args[1] as (typeof STAGES)[number];
    };
    const stages = scaled.map((s) => stageOf(s['spec'].scaleTargetRef.name));
    assert.deepEqual(stages.sort(), STAGES.filter((s) => s !== 'approval').sort());
    for (const s of scaled) {
      const stage = stageOf(s['spec'].scaleTargetRef.name);
      const trigger = s['spec'].triggers[0];
      assert.equal(trigger.type, 'prometheus');
      assert.match(trigger.metadata.query, new RegExp(`queue="${QueueName[stage]}"`));
      assert.equal(Number(trigger.metadata.threshold), config.pyexec.concurrency[stage]);
    }
  });
});

describe('deploy/prometheus and deploy/grafana', () => {
  it('has alert rules promtool accepts, whose unit tests pass', async () => {
    assert.match(await tool('promtool', ['check', 'rules', 'alerts.yml'], at('deploy/prometheus')), /SUCCESS/);
    assert.match(await tool('promtool', ['test', 'rules', 'alerts.test.yml'], at('deploy/prometheus')), /SUCCESS/);
    assert.match(
      await tool('promtool', ['check', 'config', '--syntax-only', 'prometheus.yml'], at('deploy/prometheus')),
      /SUCCESS/,
    );
  });

  it('links every alert to its runbook, a section of docs/runbooks.md', () => {
    const rules = (parseYaml(readFileSync(at('deploy/prometheus/alerts.yml'), 'utf8')) as Doc)['groups'].flatMap(
      (g: Doc) => g['rules'],
    );
    const anchors = new Set(
      [...readFileSync(at('docs/runbooks.md'), 'utf8').matchAll(/^## (.+)$/gm)].map((m) =>
        m[1]!
          .trim()
          .toLowerCase()
          .replace(/[^a-z0-9 -]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    assert.ok(rules.length >= 9);
    for (const r of rules) {
      const url = r['annotations']?.runbook_url as string | undefined;
      assert.equal(url, `docs/runbooks.md#${(r['alert'] as string).toLowerCase()}`, r['alert']);
      assert.ok(anchors.has(url!.split('#')[1]!), `docs/runbooks.md has a section for ${r['alert']}`);
    }
  });

  it('alerts on backlog, hold past deadline, kernel pool exhausted, failure rate and readiness', () => {
    const rules = (parseYaml(readFileSync(at('deploy/prometheus/alerts.yml'), 'utf8')) as Doc)['groups'].flatMap(
      (g: Doc) => g['rules'],
    );
    const names = rules.map((r: Doc) => r['alert']);
    for (const a of [
      'PyexecStageBacklogGrowing',
      'PyexecApprovalPastDeadline',
      'PyexecKernelPoolExhausted',
      'PyexecRequestFailureRateHigh',
      'PyexecWorkerNotReady',
    ]) {
      assert.ok(names.includes(a), a);
    }
    const backlog = rules.find((r: Doc) => r['alert'] === 'PyexecStageBacklogGrowing');
    assert.match(backlog['expr'], /queue!="approval-hold"/);
  });

  it('scrapes every pyexec compose service that serves /metrics', () => {
    const prom = parseYaml(readFileSync(at('deploy/prometheus/prometheus.yml'), 'utf8')) as Doc;
    const names = prom['scrape_configs'].find((s: Doc) => s['job_name'] === 'pyexec').dns_sd_configs[0]
      .names as string[];
    const services = compose['services'] as Record<string, Doc>;
    const pyexecServices = Object.keys(services).filter((n) =>
      ['worker', 'exporter'].includes(services[n]!['command']?.[0]),
    );
    assert.deepEqual([...names].sort(), pyexecServices.sort());
  });

  it('provisions a dashboard whose queries, like the rules and KEDA queries, name only metrics pyexec exports', () => {
    const dash = JSON.parse(readFileSync(at('deploy/grafana/dashboards/pyexec.json'), 'utf8')) as Doc;
    const ds = parseYaml(readFileSync(at('deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as Doc;
    const uid = ds['datasources'][0].uid;
    const exprs: string[] = [];
    for (const p of dash['panels'] as Doc[]) {
      if (p['type'] === 'row') continue;
      assert.equal(p['datasource'].uid, uid, p['title']);
      for (const t of p['targets']) exprs.push(t.expr);
    }
    const rules = (parseYaml(readFileSync(at('deploy/prometheus/alerts.yml'), 'utf8')) as Doc)['groups'].flatMap(
      (g: Doc) => g['rules'],
    );
    exprs.push(...rules.map((r: Doc) => r['expr'] as string));
    exprs.push(...ofKind('ScaledObject').map((s) => s['spec'].triggers[0].metadata.query as string));
    const exported = new Set(
      new Metrics({ defaultMetrics: false }).registry.getMetricsAsArray().map((m) => m.name),
    ).add('bullmq_job_count');
    const used = new Set(exprs.flatMap(metricNames));
    assert.ok(used.size > 15);
    for (const name of used) {
      const family = exported.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
      assert.ok(exported.has(family), `${name} is queried but not exported`);
    }
  });
});

describe('the package lock and the image', () => {
  const lock = JSON.parse(readFileSync(at('package-lock.json'), 'utf8')) as Doc;
  const packages = lock['packages'] as Record<string, Doc>;

  it("holds every platform's optional packages, so `npm ci` accepts it on any machine", () => {
    for (const [where, pkg] of Object.entries(packages)) {
      for (const dep of Object.keys(pkg['optionalDependencies'] ?? {})) {
        const nested = `${where ? `${where}/` : ''}node_modules/${dep}`;
        assert.ok(
          packages[nested] || packages[`node_modules/${dep}`],
          `${dep} (optional, of ${where || 'the root'}) is locked`,
        );
      }
    }
  });

  it('has only dependencies that support the Node version of the image', () => {
    const from = /^FROM node:(\d+)/m.exec(readFileSync(at('deploy/Dockerfile'), 'utf8'));
    assert.ok(from, 'the image is built FROM node:<major>');
    const node = `${from[1]}.0.0`;
    const satisfies = createRequire(import.meta.url)('semver/functions/satisfies.js') as (
      v: string,
      r: string,
    ) => boolean;
    for (const [where, pkg] of Object.entries(packages)) {
      const range = pkg['engines']?.node as string | undefined;
      if (where && range && !pkg['dev'])
        assert.ok(satisfies(node, range), `${where} ${pkg['version']} wants node ${range}`);
    }
  });

  it('builds the compiled CLI in the image and runs it (no tsx, no sources)', () => {
    const dockerfile = readFileSync(at('deploy/Dockerfile'), 'utf8');
    assert.match(dockerfile, /RUN node scripts\/build\.mjs/);
    assert.match(dockerfile, /COPY --from=build \/app\/dist dist/);
    assert.match(dockerfile, /npm ci --omit=dev/);
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    assert.doesNotMatch(runtime, /COPY src /, 'the runtime stage has no TypeScript sources');
  });
});

describe('secrets and generator wiring', () => {
  const composeConfig = () => readFileSync(at('deploy/config/compose.yml'), 'utf8');
  const LLM_VARS = ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'PYEXEC_MODEL_ID', 'ANTHROPIC_API_KEY'];

  it('compose: the LLM key and endpoint reach the generation service alone, approver tokens the approver alone', () => {
    const services = compose['services'] as Record<string, Doc>;
    for (const [name, svc] of Object.entries(services)) {
      const vars = Object.keys(svc['environment'] ?? {});
      for (const v of LLM_VARS) assert.equal(vars.includes(v), name === 'generation', `${name}: ${v}`);
      assert.equal(vars.includes('PYEXEC_APPROVER_TOKENS'), name === 'approver', name);
    }
    assert.equal(services['generation']!['environment'].OPENAI_API_KEY, `\${OPENAI_API_KEY:-}`);
  });

  it('kubernetes: the LLM keys come from the secret into the generation Deployment alone; tokens into the approver', () => {
    const secret = ofKind('Secret').find((x) => x['metadata'].name === 'pyexec')!;
    const refs = (d: Doc) =>
      Object.fromEntries(
        (d['spec'].template.spec.containers[0].env as Doc[]).map((e) => [e['name'], e['valueFrom']?.secretKeyRef?.key]),
      );
    for (const d of ofKind('Deployment')) {
      const env = refs(d);
      const generation = d['metadata'].name === 'pyexec-generation';
      for (const v of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY']) {
        assert.equal(v in env, generation, `${d['metadata'].name}: ${v}`);
        if (generation) assert.ok(env[v]! in secret['stringData'], `${v} from secret key ${env[v]}`);
      }
      assert.equal('PYEXEC_APPROVER_TOKENS' in env, d['metadata'].name === 'pyexec-approver', d['metadata'].name);
    }
  });

  it('the shipped configs build the basic generator from the environment and it writes code through the real SDK', async () => {
    const { startFakeLlmServer } = await import('../support/fake-llm-server.js');
    const { createCodeGenerator, OpenAiGenerator } = await import('../../src/generators/index.js');
    const llm = await startFakeLlmServer();
    try {
      const cm = ofKind('ConfigMap').find((c) => c['metadata'].name === 'pyexec-config')!;
      for (const [where, text] of [
        ['compose', composeConfig()],
        ['kubernetes', cm['data']['config.yml'] as string],
      ] as const) {
        llm.script('```python\nresults = {"ok": True}\n```');
        const config = parseConfig(parseYaml(text), {
          ...env,
          PYEXEC_GENERATOR: 'basic',
          OPENAI_BASE_URL: llm.openaiBaseUrl,
          PYEXEC_MODEL_ID: 'site-model',
        });
        const gen = await createCodeGenerator(config, { env: { OPENAI_API_KEY: 'sk-test' } });
        assert.ok(gen instanceof OpenAiGenerator, where);
        const { makeRequest, never } = await import('../support/generator-support.js');
        assert.equal((await gen.generate(makeRequest(), never)).code.trim(), 'results = {"ok": True}', where);
        assert.equal(llm.requests.at(-1)?.model, 'site-model', where);
      }
    } finally {
      await llm.close();
    }
  });

  it('approver tokens from PYEXEC_APPROVER_TOKENS join the configured ones; a malformed entry names the variable', () => {
    const sha = 'a'.repeat(64);
    const config = parseConfig(parseYaml(composeConfig()), {
      ...env,
      PYEXEC_APPROVER_TOKENS: `alice:approver:${sha}, bob:viewer:${'b'.repeat(64)}`,
    });
    assert.deepEqual(
      config.pyexec.approver.tokens.map((t) => [t.name, t.role]),
      [
        ['alice', 'approver'],
        ['bob', 'viewer'],
      ],
    );
    assert.throws(
      () => parseConfig(parseYaml(composeConfig()), { ...env, PYEXEC_APPROVER_TOKENS: 'alice:admin:xyz' }),
      /PYEXEC_APPROVER_TOKENS: entry 1 is not name:role:sha256/,
    );
  });
});
