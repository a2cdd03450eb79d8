/**
 * ONNX Runtime sessions: creation with an explicit execution provider (never a silent fallback), and the
 * forward pass of a decoder carrying the sampling head (sampling-head.ts).
 */
import { InferenceSession, Tensor, listSupportedBackends } from 'onnxruntime-node';
import { ExecutionProviderError } from './errors';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from './execution-providers';
import { KvCache, type CacheShape } from './kv-cache';
import type { SamplingHeadInfo } from './sampling-head';
import {
  readSamplingHeadOutputs,
  samplingHeadFeeds,
  samplingHeadFetches,
  type SamplingHeadInput,
  type SamplingHeadOutputs,
} from './sampling-head-io';
import { DECODER_NAMES } from './tensor-names';

export { EXECUTION_PROVIDERS, type ExecutionProvider };

export interface RuntimeOptions {
  /** Default 'cpu'. 'cuda' needs onnxruntime-node's CUDA binaries; 'webgpu' needs a GPU adapter. */
  executionProvider?: ExecutionProvider;
  /** Threads inside one operator; ONNX Runtime's default is the number of physical cores. */
  intraOpThreads?: number;
  /**
   * Let idle intra-op threads busy-wait for the next operator (ONNX Runtime's default; default here too). Off,
   * every operator wakes sleeping threads: batch-8 decoding of the ~25M-parameter benchmark model fell from
   * about 1,000 to 470 tokens/s. Either way the threads stop spinning when a run returns
   * (`session.force_spinning_stop`), so they never busy-wait between passes.
   */
  spinWait?: boolean;
  /** Write an ONNX Runtime profile (per-operator timings) to files starting with this path. */
  profileFilePrefix?: string;
}

export interface WeightsLocation {
  /** Folder holding the external data files the graph names. */
  externalDataFolder?: string | null;
  /** External data files held in memory, by the location the graph names. */
  externalData?: readonly { path: string; data: Uint8Array }[];
}

const INSTALL_HINTS: Record<ExecutionProvider, string> = {
  cpu: 'the CPU provider ships with onnxruntime-node; reinstall onnxruntime-node',
  cuda: "install onnxruntime-node with its CUDA binaries on the GPU host (`npm install onnxruntime-node --onnxruntime-node-install=cuda12`, or ONNXRUNTIME_NODE_INSTALL=cuda12 during `npm ci`; they are not in the npm package) and make CUDA 12 and cuDNN 9 loadable (LD_LIBRARY_PATH); use executionProvider 'cpu' on hosts without an NVIDIA GPU",
  webgpu:
    "WebGPU needs a GPU adapter: install the GPU's Vulkan driver and loader (libvulkan.so.1) on Linux, D3D12 on Windows, Metal on macOS; use executionProvider 'cpu' on hosts without a GPU",
};

function checkProvider(provider: string): ExecutionProvider {
  if (!(EXECUTION_PROVIDERS as readonly string[]).includes(provider)) {
    throw new ExecutionProviderError(
      `execution provider "${provider}" is not supported; expected one of ${EXECUTION_PROVIDERS.join(', ')}`,
    );
  }
  const known = listSupportedBackends().map((backend) => backend.name);
  if (!known.includes(provider)) {
    throw new ExecutionProviderError(
      `execution provider "${provider}" is not available in this onnxruntime-node build for ${process.platform}/${process.arch}: ${INSTALL_HINTS[provider as ExecutionProvider]}`,
    );
  }
  return provider as ExecutionProvider;
}

/** Creates a session on exactly the provider asked for; if it cannot load, says how to install it. */
export async function createSession(
  model: Uint8Array,
  options: RuntimeOptions = {},
  weights: WeightsLocation = {},
): Promise<InferenceSession> {
  const provider = checkProvider(options.executionProvider ?? 'cpu');
  if (
    options.intraOpThreads !== undefined &&
    (!Number.isInteger(options.intraOpThreads) || options.intraOpThreads < 1)
  ) {
    throw new ExecutionProviderError(
      `intraOpThreads must be a positive integer, got ${options.intraOpThreads}`,
    );
  }
  const sessionOptions: InferenceSession.SessionOptions = {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...(options.intraOpThreads === undefined ? {} : { intraOpNumThreads: options.intraOpThreads }),
    ...(options.profileFilePrefix === undefined
      ? {}
      : { enableProfiling: true, profileFilePrefix: options.profileFilePrefix }),
    ...(weights.externalData === undefined
      ? {}
      : { externalData: weights.externalData.map(({ path, data }) => ({ path, data })) }),
    extra: {
      session: {
        intra_op: { allow_spinning: options.spinWait === false ? '0' : '1' },
        // Spin between the operators of a run, not after it: between runs the cores go to the JavaScript that
        // samples and batches, to the Temporal worker and to other processes. Generation speed was unchanged.
        force_spinning_stop: '1',
        ...(weights.externalDataFolder
          ? { model_external_initializers_file_folder_path: weights.externalDataFolder }
          : {}),
      },
    },
  };
  try {
    return await InferenceSession.create(model, sessionOptions);
  } catch (error) {
    if (provider === 'cpu') throw error;
    throw new ExecutionProviderError(
      `execution provider "${provider}" could not be loaded (${(error as Error).message.split('\n')[0]}): ${INSTALL_HINTS[provider]}`,
    );
  }
}

export interface ForwardInput extends SamplingHeadInput {
  sequence: number;
  /** [rows, sequence] */
  inputIds: BigInt64Array;
  /** [rows, cache columns + sequence] */
  attentionMask: BigInt64Array;
  /** [rows, sequence] */
  positionIds: BigInt64Array;
  cache: KvCache;
}

export interface ForwardOutput extends SamplingHeadOutputs {
  cache: KvCache;
}

/** Timings of the forward passes, for benchmarks and monitoring. */
export interface ForwardStats {
  runs: number;
  runMs: number;
  /** Runs that also copied out the full probabilities (top-p sets larger than the candidates). */
  fullDistributionRuns: number;
}

/** A decoder session with the sampling head attached. */
export class DecoderRunner {
  readonly stats: ForwardStats = { runs: 0, runMs: 0, fullDistributionRuns: 0 };
  /** The cache's outputs, fetched every run. */
  private readonly cacheFetches: string[] = [];

  constructor(
    private readonly session: InferenceSession,
    readonly cacheShape: CacheShape,
    readonly head: SamplingHeadInfo,
  ) {
    for (let layer = 0; layer < cacheShape.layers; layer++)
      this.cacheFetches.push(DECODER_NAMES.presentKey(layer), DECODER_NAMES.presentValue(layer));
  }

  async forward(input: ForwardInput): Promise<ForwardOutput> {
    const { rows, sequence } = input;
    const feeds: Record<string, Tensor> = {
      [DECODER_NAMES.inputIds]: new Tensor('int64', input.inputIds, [rows, sequence]),
      [DECODER_NAMES.attentionMask]: new Tensor('int64', input.attentionMask, [rows, input.cache.columns + sequence]),
      [DECODER_NAMES.positionIds]: new Tensor('int64', input.positionIds, [rows, sequence]),
      ...input.cache.pastFeeds(),
      ...samplingHeadFeeds(input),
    };
    const fetches = [...samplingHeadFetches(input), ...this.cacheFetches];
    const started = performance.now();
    const outputs = (await this.session.run(feeds, fetches)) as Record<string, Tensor>;
    this.stats.runMs += performance.now() - started;
    this.stats.runs += 1;
    if (input.fetchProbabilities) this.stats.fullDistributionRuns += 1;
    return { cache: KvCache.fromPresent(this.cacheShape, outputs), ...readSamplingHeadOutputs(outputs, input) };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
