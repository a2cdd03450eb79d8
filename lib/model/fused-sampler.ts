/**
 * The fused token sampler: the sampling head (sampling-head.ts) that generation appends to the decoder, here
 * on a graph whose logits are its input, so the head and the token choice that generation runs can be checked
 * against the reference sampler (reference-sampler.ts) on given logits.
 */
import { Tensor, type InferenceSession } from 'onnxruntime-node';
import { GenerationRequestError } from './errors';
import { DataType, IR_VERSION, OPSET_VERSION, encodeModel, valueInfo, type onnx } from './onnx-graph';
import {
  candidatesNeeded,
  chooseToken,
  type RowChoice,
  type TokenChoice,
  type TokenRequest,
  type TokenSampler,
} from './sampling';
import { attachSamplingHead, type SamplingHeadInfo } from './sampling-head';
import { readSamplingHeadOutputs, rowHeadOutputs, samplingHeadFeeds, samplingHeadFetches } from './sampling-head-io';
import { createSession, type RuntimeOptions } from './session';
import { DECODER_NAMES } from './tensor-names';

const LOGITS_INPUT = 'fused_sampler.logits';

export class FusedSampler implements TokenSampler {
  private constructor(
    private readonly session: InferenceSession,
    private readonly head: SamplingHeadInfo,
    private readonly nucleusBudget: number,
  ) {}

  /**
   * A sampler over `vocabularySize` ids. `nucleusBudget`: the candidates a top-p row without top-k reads
   * before it falls back to the full probabilities (generation adapts it per row).
   */
  static async create(
    vocabularySize: number,
    options: RuntimeOptions & { nucleusBudget?: number } = {},
  ): Promise<FusedSampler> {
    const shape = ['batch', 'sequence', vocabularySize];
    const model: onnx.IModelProto = {
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET_VERSION }],
      graph: {
        name: 'logits-as-input',
        node: [{ opType: 'Identity', input: [LOGITS_INPUT], output: [DECODER_NAMES.logits] }],
        input: [valueInfo(LOGITS_INPUT, DataType.FLOAT, shape)],
        output: [valueInfo(DECODER_NAMES.logits, DataType.FLOAT, shape)],
      },
    };
    const head = attachSamplingHead(model, vocabularySize, vocabularySize, 'the fused sampler');
    const session = await createSession(encodeModel(model), options);
    return new FusedSampler(session, head, options.nucleusBudget ?? 256);
  }

  async choose(logits: Float32Array, vocabularySize: number, requests: readonly TokenRequest[]): Promise<TokenChoice[]> {
    if (vocabularySize !== this.head.vocabularySize) {
      throw new GenerationRequestError(`this sampler draws from ${this.head.vocabularySize} ids, not ${vocabularySize}`);
    }
    const rows = requests.length;
    const needed = requests.map((request) => candidatesNeeded(request.params, this.nucleusBudget, vocabularySize));
    const input = {
      rows,
      inverseTemperature: Float32Array.from(requests, ({ params }) => (params.temperature > 0 ? 1 / params.temperature : 1)),
      blockUniform: Float32Array.from(requests, ({ uniforms }) => uniforms[0]),
      topCount: Math.max(0, ...needed),
      fetchProbabilities: false,
    };
    let choices = await this.run(logits, input, requests, needed);
    if (choices.some((choice) => choice.kind === 'needs-full-distribution')) {
      choices = await this.run(logits, { ...input, fetchProbabilities: true }, requests, needed);
    }
    return choices.map((choice) => {
      if (choice.kind !== 'token') throw new Error('internal error: full probabilities were fetched but a row still lacked them');
      return { token: choice.token, logProb: choice.logProb };
    });
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  private async run(
    logits: Float32Array,
    input: Parameters<typeof samplingHeadFeeds>[0],
    requests: readonly TokenRequest[],
    needed: readonly number[],
  ): Promise<RowChoice[]> {
    const feeds: Record<string, Tensor> = {
      [LOGITS_INPUT]: new Tensor('float32', logits, [input.rows, 1, this.head.vocabularySize]),
      ...samplingHeadFeeds(input),
    };
    const outputs = readSamplingHeadOutputs(
      (await this.session.run(feeds, samplingHeadFetches(input))) as Record<string, Tensor>,
      input,
    );
    const shape = {
      rows: input.rows,
      topCount: input.topCount,
      vocabularySize: this.head.vocabularySize,
      paddedVocabularySize: this.head.paddedVocabularySize,
    };
    return requests.map((request, row) =>
      chooseToken(request.params, request.uniforms, rowHeadOutputs(outputs, shape, row, needed[row]), needed[row]),
    );
  }
}
