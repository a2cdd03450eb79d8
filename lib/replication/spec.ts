/**
 * The small-scale replication's specification (ARCHITECTURE.md §7): which benchmark, how episodes read it,
 * which evaluation seeds, and the agents compared. A committed JSON file; `rememr1 replication` evaluates it.
 */
import { z } from 'zod';
import { DEFAULT_METRICS_MODE, METRICS_MODES } from '../agent/metrics';
import { AGENT_MODES } from '../agent/mode';
import { ENTITY_VOCABULARIES, EVIDENCE_ORDERS, type BenchmarkSpec } from '../data/distant-evidence';

export const REPLICATION_SPEC_FORMAT = 'rememr1-replication/1';

const positive = z.number().int().positive();

const variantSchema = z
  .object({
    /** File-name-safe id; results are cached under it. */
    id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'variant ids use a-z, 0-9 and -'),
    /** The row label in the table. */
    label: z.string().min(1),
    /**
     * `rule:forward` / `rule:callback[:words]`, a model folder (relative to the repository; it may leave out
     * onnx/, which is then rebuilt from model.safetensors), or `version:NAME` (an exported policy version in
     * the configured blob store). A list gives one policy per evaluation seed, in the order of `seeds`: the
     * models of training seeds 1, 2, 3 evaluated with sampling seeds 1, 2, 3, so that the range in the table
     * spans training as well as sampling.
     */
    policy: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    mode: z.enum(AGENT_MODES).default('rememr1'),
    /** false: the model's `<recall>` queries are answered with nothing (the callback ablation). */
    callback: z.boolean().default(true),
  })
  .strict();

export const replicationSpecSchema = z
  .object({
    format: z.literal(REPLICATION_SPEC_FORMAT),
    benchmark: z
      .object({
        seed: positive,
        /** Test questions per document length. */
        questions: positive,
        chunks: z.array(positive).min(1),
        chunkTokens: positive,
        hops: z.array(positive).min(1),
        order: z.enum(EVIDENCE_ORDERS),
        minEvidenceGap: z.number().int().nonnegative(),
        distractorsPerChunk: z.number().int().nonnegative(),
        distractorSimilarity: z.number().min(0).max(1),
        vocabulary: z.enum(ENTITY_VOCABULARIES),
        /** The split the rows come from (`test` for the table). */
        split: z.string().regex(/^[a-z0-9-]+$/),
      })
      .strict(),
    episode: z
      .object({
        memoryTokens: positive,
        answerTokens: positive,
        temperature: z.number().positive(),
        topP: z.number().positive().max(1),
      })
      .strict(),
    /** How answers are scored (lib/agent/metrics.ts); named in the table. */
    metrics: z.enum(METRICS_MODES).default(DEFAULT_METRICS_MODE),
    /** Evaluation seeds: sampled agents run once per seed; the table gives the mean and the range. */
    seeds: z.array(positive).min(1),
    /** Episodes in flight at once. */
    concurrency: positive.default(8),
    variants: z.array(variantSchema).min(1),
    /**
     * Training runs whose curves are drawn (training.svg), in the order they ran: each one's per-step metrics
     * as `rememr1 train-report RUN --out {spec folder}/training/RUN` keeps them (metrics.jsonl), so the plot is redrawn
     * from committed files.
     */
    training: z
      .array(z.object({ run: z.string().regex(/^[A-Za-z0-9._-]+$/), label: z.string().min(1) }).strict())
      .default([]),
  })
  .strict()
  .superRefine((spec, context) => {
    const ids = spec.variants.map((variant) => variant.id);
    const repeated = ids.find((id, index) => ids.indexOf(id) !== index);
    if (repeated !== undefined)
      context.addIssue({ code: 'custom', message: `variant id "${repeated}" appears twice` });
    spec.variants.forEach((variant, index) => {
      if (Array.isArray(variant.policy) && variant.policy.length !== spec.seeds.length)
        context.addIssue({
          code: 'custom',
          path: ['variants', index, 'policy'],
          message: `variant "${variant.id}" lists ${variant.policy.length} policies for ${spec.seeds.length} seeds; give one per seed`,
        });
    });
  });

export type ReplicationSpec = z.infer<typeof replicationSpecSchema>;
export type ReplicationVariant = ReplicationSpec['variants'][number];

/** The policy a variant is evaluated with at the evaluation seed with index `seedIndex` in `seeds`. */
export function policyAtSeed(variant: ReplicationVariant, seedIndex: number): string {
  return Array.isArray(variant.policy) ? variant.policy[seedIndex] : variant.policy;
}

/** The spec's benchmark as the generator takes it (one split). */
export function benchmarkSpecOf(spec: ReplicationSpec): BenchmarkSpec {
  const { questions, chunks, split, ...options } = spec.benchmark;
  return {
    options,
    splits: {
      [split]: { questions, chunks },
    },
  };
}

/** A parsed spec, or one line naming the first problem. */
export function parseReplicationSpec(value: unknown, source: string): ReplicationSpec {
  const parsed = replicationSpecSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  throw new Error(`${source}: not a replication spec${where}: ${issue.message}`);
}
