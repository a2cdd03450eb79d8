/**
 * The deployment in infra/k8s/, checked offline: every object validates against the Kubernetes (and KEDA) schemas
 * of `kubernetes-models`; the ConfigMap is a valid project configuration; the pods live longer on shutdown than
 * the configuration's grace time plus heartbeat timeout; probes and ports match the configured endpoints; KEDA
 * watches the configured queues; the image holds every file the workers import.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { minimumTerminationGraceSeconds, type DeployedRole } from '../../../infra/deployment';
import { defaultConfig, loadConfig, projectRoot, type RememConfig } from '../../../temporal.config';
import { parseBindAddress } from '../../../workers/health';

const k8sRoot = path.join(projectRoot, 'infra', 'k8s');

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: never) => Validatable;

/** The kinds the deployment may use, by apiVersion/kind; anything else is a mistake the test reports. */
const models: Record<string, ModelClass> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
};

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  [key: string]: unknown;
}

function yamlFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(entry.name) ? [full] : [];
  });
}

function readDocuments(file: string): unknown[] {
  return parseAllDocuments(fs.readFileSync(file, 'utf8')).map((document) => {
    if (document.errors.length > 0)
      throw new Error(`${path.relative(projectRoot, file)}: ${document.errors[0].message}`);
    return document.toJS() as unknown;
  });
}

const files = yamlFiles(k8sRoot);
const kustomizations = files.filter((file) => path.basename(file) === 'kustomization.yaml');
const objects: K8sObject[] = files
  .filter((file) => !kustomizations.includes(file))
  .flatMap((file) => readDocuments(file) as K8sObject[]);
const byKind = <T extends K8sObject>(kind: string): T[] =>
  objects.filter((object) => object.kind === kind) as T[];

interface DeploymentObject extends K8sObject {
  spec: {
    template: {
      metadata: { annotations?: Record<string, string> };
      spec: {
        terminationGracePeriodSeconds?: number;
        nodeSelector?: Record<string, string>;
        tolerations?: Array<{ key?: string }>;
        containers: IContainer[];
      };
    };
  };
}
interface ScaledObjectObject extends K8sObject {
  spec: {
    scaleTargetRef: { name: string };
    triggers: Array<{ type: string; metadata: Record<string, string> }>;
  };
}

const deployments = byKind<DeploymentObject>('Deployment');
const roleOf = (deployment: DeploymentObject): DeployedRole =>
  deployment.metadata.name.replace(/^rememr1-/, '') as DeployedRole;

/**
 * The configuration a worker pod loads: its environment (ConfigMap rememr1-env, with `envOverrides` as an overlay's
 * configMapGenerator merges them, then the container's literal env) and config.json.
 */
function podConfig(deployment: DeploymentObject, envOverrides: NodeJS.ProcessEnv = {}): RememConfig {
  const configMaps = byKind<K8sObject & { data: Record<string, string> }>('ConfigMap');
  const env: NodeJS.ProcessEnv = {
    ...configMaps.find((map) => map.metadata.name === 'rememr1-env')?.data,
    ...envOverrides,
  };
  for (const variable of deployment.spec.template.spec.containers[0].env ?? [])
    env[variable.name] = variable.value;
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rememr1-k8s-')), 'config.json');
  fs.writeFileSync(
    file,
    configMaps.find((map) => map.metadata.name === 'rememr1-config')!.data['config.json'],
  );
  expect(env.REMEMR1_CONFIG).toBe('/etc/rememr1/config/config.json');
  return loadConfig({ env: { ...env, REMEMR1_CONFIG: file } });
}

describe('the Kubernetes deployment (infra/k8s)', () => {
  it('validates against the Kubernetes and KEDA schemas, and every kustomization names files that exist', () => {
    expect(objects.length).toBeGreaterThan(0);
    for (const object of objects) {
      const Model = models[`${object.apiVersion}/${object.kind}`];
      expect({ object: `${object.kind} ${object.metadata?.name}`, known: Model !== undefined }).toEqual({
        object: `${object.kind} ${object.metadata?.name}`,
        known: true,
      });
      expect(() => new Model(object as never).validate()).not.toThrow();
    }
    for (const file of kustomizations) {
      const [kustomization] = readDocuments(file) as Array<{ resources: string[] }>;
      for (const resource of kustomization.resources)
        expect(fs.existsSync(path.join(path.dirname(file), resource))).toBe(true);
    }
  });

  it('catches a broken manifest (the validator is not a no-op)', () => {
    const [deployment] = deployments;
    const broken = structuredClone(deployment);
    (broken.spec.template.spec as { terminationGracePeriodSeconds: unknown }).terminationGracePeriodSeconds =
      '120s';
    expect(() => new Deployment(broken as never).validate()).toThrow(
      /terminationGracePeriodSeconds must be integer/,
    );
  });

  it('has one Deployment per worker role, each running its role with a valid configuration', () => {
    expect(deployments.map(roleOf).sort()).toEqual(['inference', 'orchestration', 'trainer']);
    for (const deployment of deployments) {
      const [container] = deployment.spec.template.spec.containers;
      const entry = container.command?.[container.command.length - 1] ?? '';
      expect(entry).toBe(`workers/${roleOf(deployment)}.ts`);
      expect(fs.existsSync(path.join(projectRoot, entry))).toBe(true);
      const config = podConfig(deployment);
      // Explicit queue names (not scoped by storage), so that KEDA and clients can name them.
      expect(config.taskQueues).toEqual({
        orchestration: 'rememr1-cluster-orchestration',
        inference: 'rememr1-cluster-inference',
        trainer: 'rememr1-cluster-trainer',
      });
      expect(config.storage.kind).toBe('s3');
    }
  });

  it('gives pods more time to stop than the grace time plus the longest heartbeat timeout of their activities', () => {
    for (const deployment of deployments) {
      const role = roleOf(deployment);
      const grace = deployment.spec.template.spec.terminationGracePeriodSeconds ?? 30;
      for (const config of [defaultConfig(), podConfig(deployment)]) {
        expect({ role, longer: grace > minimumTerminationGraceSeconds(config, role) }).toEqual({
          role,
          longer: true,
        });
      }
    }
    // The trainer's 5-minute heartbeat is what makes its grace period long.
    expect(minimumTerminationGraceSeconds(defaultConfig(), 'trainer')).toBe(330);
  });

  it('probes the health server and exposes the metrics endpoint at the configured ports', () => {
    for (const deployment of deployments) {
      const config = podConfig(deployment);
      const [container] = deployment.spec.template.spec.containers;
      const port = (name: string): number | undefined =>
        container.ports?.find((candidate) => candidate.name === name)?.containerPort;
      expect(port('health')).toBe(parseBindAddress(config.health.bindAddress!).port);
      expect(port('metrics')).toBe(parseBindAddress(config.metrics.prometheusBindAddress!).port);
      expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'health' });
      expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'health' });
      expect(deployment.spec.template.metadata.annotations?.['prometheus.io/port']).toBe(
        String(port('metrics')),
      );
    }
  });

  it('puts inference on GPU nodes with a GPU each and the CUDA execution provider', () => {
    const inference = deployments.find((deployment) => roleOf(deployment) === 'inference')!;
    const { spec } = inference.spec.template;
    const [container] = spec.containers;
    expect(container.resources?.requests?.['nvidia.com/gpu']).toBe(1);
    expect(container.resources?.limits?.['nvidia.com/gpu']).toBe(1);
    expect(spec.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(spec.tolerations?.map((toleration) => toleration.key)).toContain('nvidia.com/gpu');
    expect(podConfig(inference).model.executionProvider).toBe('cuda');
    for (const other of deployments.filter((deployment) => deployment !== inference)) {
      expect(other.spec.template.spec.containers[0].resources?.limits?.['nvidia.com/gpu']).toBeUndefined();
    }
  });

  it('scales each role by the backlog of the task queue it serves, on the configured server and namespace', () => {
    const scaled = byKind<ScaledObjectObject>('ScaledObject');
    expect(scaled.map((object) => object.spec.scaleTargetRef.name).sort()).toEqual(
      deployments.map((d) => d.metadata.name).sort(),
    );
    for (const object of scaled) {
      const deployment = deployments.find(
        (candidate) => candidate.metadata.name === object.spec.scaleTargetRef.name,
      )!;
      const config = podConfig(deployment);
      const [trigger] = object.spec.triggers;
      expect(trigger.type).toBe('temporal');
      expect(trigger.metadata).toMatchObject({
        endpoint: config.temporal.address,
        namespace: config.temporal.namespace,
        taskQueue: config.taskQueues[roleOf(deployment)],
      });
    }
  });
});

describe('the example overlay for Temporal Cloud and AWS (infra/k8s/example-cloud)', () => {
  interface Overlay {
    resources: string[];
    configMapGenerator: Array<{ name: string; behavior: string; literals: string[] }>;
    patches: Array<{ target: { kind: string }; patch: string }>;
  }
  const [overlay] = readDocuments(path.join(k8sRoot, 'example-cloud', 'kustomization.yaml')) as Overlay[];
  const generator = overlay.configMapGenerator.find((entry) => entry.name === 'rememr1-env')!;
  const literals = Object.fromEntries(
    generator.literals.map((literal) => [
      literal.slice(0, literal.indexOf('=')),
      literal.slice(literal.indexOf('=') + 1),
    ]),
  );

  it('points the workers at Temporal Cloud over TLS with the API key from the Secret, and at the S3 bucket', () => {
    expect(generator.behavior).toBe('merge');
    for (const deployment of deployments) {
      const config = podConfig(deployment, { ...literals, TEMPORAL_API_KEY: 'from-the-secret' });
      expect(config.temporal).toMatchObject({
        address: literals.REMEMR1_TEMPORAL_ADDRESS,
        namespace: literals.REMEMR1_TEMPORAL_NAMESPACE,
        apiKey: 'from-the-secret',
      });
      expect(config.temporal.tls.enabled).toBe(true);
      expect(config.storage).toMatchObject({
        kind: 's3',
        bucket: literals.REMEMR1_S3_BUCKET,
        region: literals.REMEMR1_S3_REGION,
      });
    }
  });

  it('gives KEDA the same endpoint and namespace, over TLS, with the same key', () => {
    const keda = overlay.patches.find((patch) => patch.target.kind === 'ScaledObject')!;
    const operations = parseAllDocuments(keda.patch)[0].toJS() as Array<{
      op: string;
      path: string;
      value: unknown;
    }>;
    const value = (pointer: string): unknown =>
      operations.find((operation) => operation.path === pointer)?.value;
    expect(value('/spec/triggers/0/metadata/endpoint')).toBe(literals.REMEMR1_TEMPORAL_ADDRESS);
    expect(value('/spec/triggers/0/metadata/namespace')).toBe(literals.REMEMR1_TEMPORAL_NAMESPACE);
    expect(value('/spec/triggers/0/metadata/enableTLS')).toBe('true');
    const auth = byKind<
      K8sObject & { spec: { secretTargetRef: Array<{ parameter: string; name: string; key: string }> } }
    >('TriggerAuthentication');
    expect(value('/spec/triggers/0/authenticationRef')).toEqual({ name: auth[0].metadata.name });
    expect(auth[0].spec.secretTargetRef).toEqual([
      { parameter: 'apiKey', name: 'rememr1-temporal', key: 'TEMPORAL_API_KEY' },
    ]);
    // The workers read the same Secret.
    for (const deployment of deployments) {
      expect(deployment.spec.template.spec.containers[0].envFrom).toContainEqual({
        secretRef: { name: 'rememr1-temporal', optional: true },
      });
    }
  });
});

describe('the guide (docs/deploy.md)', () => {
  const guide = fs.readFileSync(path.join(projectRoot, 'docs', 'deploy.md'), 'utf8');

  it('creates the Secrets the pods read, and gives the mTLS files where the pods mount them', () => {
    expect(guide).toContain('create secret generic rememr1-temporal --from-literal=TEMPORAL_API_KEY=');
    expect(guide).toContain('create secret tls rememr1-temporal-tls');
    const cert = /REMEMR1_TEMPORAL_TLS_CERT=(\S+?)`/.exec(guide)?.[1];
    const key = /REMEMR1_TEMPORAL_TLS_KEY=(\S+?)`/.exec(guide)?.[1];
    for (const deployment of deployments) {
      const { spec } = deployment.spec.template;
      const volume = (
        spec as { volumes?: Array<{ name: string; secret?: { secretName: string } }> }
      ).volumes?.find((candidate) => candidate.secret?.secretName === 'rememr1-temporal-tls');
      const mount = spec.containers[0].volumeMounts?.find((candidate) => candidate.name === volume?.name);
      // `kubectl create secret tls` names the files tls.crt and tls.key.
      expect([cert, key]).toEqual([`${mount?.mountPath}/tls.crt`, `${mount?.mountPath}/tls.key`]);
    }
  });
});

describe('the Dockerfile', () => {
  const dockerfile = fs.readFileSync(path.join(projectRoot, 'Dockerfile'), 'utf8');
  const copied = dockerfile
    .split('\n')
    .filter((line) => line.startsWith('COPY '))
    .flatMap((line) => line.split(/\s+/).slice(1, -1));

  /** Project files reachable by relative imports from `entries` (TypeScript sources only). */
  function reachable(entries: string[]): Set<string> {
    const seen = new Set<string>();
    const queue = [...entries];
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const source = fs.readFileSync(path.join(projectRoot, file), 'utf8');
      for (const match of source.matchAll(
        /(?:from\s+|import\(|require(?:\.resolve)?\()\s*'(\.{1,2}\/[^']+)'/g,
      )) {
        const base = path.join(path.dirname(file), match[1]);
        const candidates = [`${base}.ts`, path.join(base, 'index.ts'), base];
        const found = candidates.find(
          (candidate) =>
            fs.existsSync(path.join(projectRoot, candidate)) &&
            fs.statSync(path.join(projectRoot, candidate)).isFile(),
        );
        if (found?.endsWith('.ts')) queue.push(found);
      }
    }
    return seen;
  }

  it('copies every file the workers and the CLI import, and every COPY source exists', () => {
    for (const source of copied) expect(fs.existsSync(path.join(projectRoot, source))).toBe(true);
    const entries = [
      'workers/inference.ts',
      'workers/trainer.ts',
      'workers/orchestration.ts',
      'workers/all-in-one.ts',
      'cli/main.ts',
    ];
    const needed = new Set([...reachable(entries)].map((file) => file.split(path.sep)[0]));
    needed.add('models');
    for (const top of needed) expect({ top, copied: copied.includes(top) }).toEqual({ top, copied: true });
  });

  it('exposes the ports the manifests probe and scrape', () => {
    const exposed = /^EXPOSE (.+)$/m.exec(dockerfile)?.[1].split(/\s+/).map(Number) ?? [];
    for (const deployment of deployments) {
      for (const port of deployment.spec.template.spec.containers[0].ports ?? [])
        expect(exposed).toContain(port.containerPort);
    }
  });
});
