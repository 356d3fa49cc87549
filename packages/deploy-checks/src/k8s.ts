import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  ClusterTriggerAuthentication,
  ScaledObject,
  TriggerAuthentication,
} from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from './compose';

/**
 * deploy/k8s as data: each overlay rendered by kustomize (`kubectl kustomize`, which bundles it,
 * or a standalone `kustomize build`), every object checked against the OpenAPI schema of its
 * kind from the maintained `kubernetes-models` and `@kubernetes-models/keda` packages (generated
 * from Kubernetes' and KEDA's own schemas). No cluster is needed.
 */

export const k8sDir = join(repoRoot, 'deploy/k8s');
export const overlaysDir = join(k8sDir, 'overlays');

/** The overlays, one per broker, named by the BROKER value they set. */
export function overlayNames(): string[] {
  return readdirSync(overlaysDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}

/** A rendered object; the tests read its fields by path, after validateObject() checked them. */
export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: manifests are read field by field, schema-checked first
} & Record<string, any>;

/** How to run kustomize here, or an error saying how to get it. */
export function findKustomize(): string[] {
  const works = (cmd: string, args: string[]) =>
    spawnSync(cmd, args, { stdio: 'ignore', timeout: 30_000 }).status === 0;
  if (works('kubectl', ['kustomize', '--help'])) return ['kubectl', 'kustomize'];
  if (works('kustomize', ['version'])) return ['kustomize', 'build'];
  throw new Error(
    'kustomize is not installed: the Kubernetes checks need `kubectl` 1.27+ (it bundles kustomize v5; ' +
      'Debian: `apt-get install kubectl` from the Kubernetes or Google Cloud apt repository) or a ' +
      'standalone `kustomize` v5 on PATH. No cluster is needed.',
  );
}

/** `kustomize build <dir>` as objects. */
export function render(dir: string): K8sObject[] {
  const [command, ...args] = findKustomize();
  const result = spawnSync(command!, [...args, dir], { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`kustomize failed on ${dir}:\n${result.stderr}`);
  return parseAllDocuments(result.stdout)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

const models: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
  'keda.sh/v1alpha1/ClusterTriggerAuthentication': ClusterTriggerAuthentication,
};

/** Throws naming the object and the schema's complaint; a kind without a model is refused too. */
export function validateObject(object: K8sObject): void {
  const Model = models[`${object.apiVersion}/${object.kind}`];
  const what = `${object.kind} ${object.metadata?.name}`;
  if (!Model)
    throw new Error(`${what}: no schema for ${object.apiVersion} ${object.kind} (add it to k8s.ts)`);
  try {
    new Model(object as never).validate();
  } catch (error) {
    throw new Error(`${what} does not match its schema: ${(error as Error).message}`);
  }
}

/**
 * The KEDA trigger types the overlays use, with the metadata fields KEDA's documentation
 * (keda.sh/docs/2.x/scalers/<type>) lists as required, and the groups of which one must be
 * given. The CRD's schema types trigger metadata as a free map of strings, so this is the
 * structure check for what it leaves open.
 */
export const kedaTriggers: Record<string, { required: string[]; oneOf: string[][]; known: string[] }> = {
  'redis-streams': {
    required: ['stream', 'consumerGroup'],
    oneOf: [['address', 'addressFromEnv', 'host', 'hostFromEnv']],
    known: [
      'address',
      'addressFromEnv',
      'host',
      'hostFromEnv',
      'port',
      'portFromEnv',
      'username',
      'usernameFromEnv',
      'passwordFromEnv',
      'databaseIndex',
      'enableTLS',
      'unsafeSsl',
      'stream',
      'consumerGroup',
      'pendingEntriesCount',
      'streamLength',
      'lagCount',
      'activationLagCount',
      'activationValueTarget',
    ],
  },
  rabbitmq: {
    required: ['queueName', 'mode', 'value'],
    oneOf: [['host', 'hostFromEnv']],
    known: [
      'host',
      'hostFromEnv',
      'protocol',
      'queueName',
      'mode',
      'value',
      'activationValue',
      'vhostName',
      'useRegex',
      'operation',
      'excludeUnacknowledged',
      'timeout',
      'unsafeSsl',
    ],
  },
  kafka: {
    required: ['consumerGroup', 'lagThreshold'],
    oneOf: [['bootstrapServers', 'bootstrapServersFromEnv']],
    known: [
      'bootstrapServers',
      'bootstrapServersFromEnv',
      'consumerGroup',
      'consumerGroupFromEnv',
      'topic',
      'topicFromEnv',
      'lagThreshold',
      'activationLagThreshold',
      'offsetResetPolicy',
      'allowIdleConsumers',
      'scaleToZeroOnInvalidOffset',
      'excludePersistentLag',
      'limitToPartitionsWithLag',
      'partitionLimitation',
      'version',
      'sasl',
      'tls',
    ],
  },
  'aws-sqs-queue': {
    required: ['awsRegion'],
    oneOf: [['queueURL', 'queueURLFromEnv']],
    known: [
      'queueURL',
      'queueURLFromEnv',
      'queueLength',
      'activationQueueLength',
      'awsRegion',
      'awsEndpoint',
      'identityOwner',
      'scaleOnInFlight',
      'scaleOnDelayed',
    ],
  },
  mysql: {
    required: ['query', 'queryValue'],
    oneOf: [['connectionStringFromEnv', 'host']],
    known: [
      'connectionStringFromEnv',
      'host',
      'port',
      'dbName',
      'username',
      'passwordFromEnv',
      'query',
      'queryValue',
      'activationQueryValue',
    ],
  },
  prometheus: {
    required: ['serverAddress', 'query', 'threshold'],
    oneOf: [],
    known: [
      'serverAddress',
      'query',
      'threshold',
      'activationThreshold',
      'namespace',
      'customHeaders',
      'ignoreNullValues',
      'queryParameters',
      'unsafeSsl',
    ],
  },
};

/** Problems of one trigger's metadata against kedaTriggers; empty when it is well formed. */
export function triggerProblems(trigger: { type: string; metadata?: Record<string, unknown> }): string[] {
  const spec = kedaTriggers[trigger.type];
  if (!spec) return [`unknown trigger type ${trigger.type}`];
  const metadata = trigger.metadata ?? {};
  const problems: string[] = [];
  for (const [field, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') problems.push(`${trigger.type}.${field} must be a string (quote it)`);
    if (!spec.known.includes(field)) problems.push(`${trigger.type}: unknown field ${field}`);
  }
  for (const field of spec.required)
    if (!(field in metadata)) problems.push(`${trigger.type}: ${field} is required`);
  for (const group of spec.oneOf)
    if (!group.some((field) => field in metadata))
      problems.push(`${trigger.type}: one of ${group.join(', ')} is required`);
  return problems;
}

/** The environment a container sees: its ConfigMaps and Secrets (envFrom), then its own env. */
export function containerEnvironment(container: K8sObject, objects: K8sObject[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) {
      const map = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === source.configMapRef.name);
      if (!map) throw new Error(`ConfigMap ${source.configMapRef.name} is not in the rendered manifests`);
      Object.assign(env, map.data ?? {});
    }
    if (source.secretRef) {
      const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === source.secretRef.name);
      if (!secret) throw new Error(`Secret ${source.secretRef.name} is not in the rendered manifests`);
      for (const [key, value] of Object.entries(secret.data ?? {}))
        env[key] = Buffer.from(String(value), 'base64').toString('utf8');
      Object.assign(env, secret.stringData ?? {});
    }
  }
  for (const variable of container.env ?? []) env[variable.name] = String(variable.value ?? '');
  return env;
}
