/**
 * Feeding the sampling head (sampling-head.ts) and reading what it returns for each row: shared by the decoder
 * runner (session.ts, generate.ts) and the fused sampler (fused-sampler.ts), so both read the head the same way.
 */
import { Tensor } from 'onnxruntime-node';
import { DRAW_BLOCK, SAMPLING_HEAD, SEARCH_BLOCK } from './sampling-head';
import type { RowHeadOutputs } from './sampling';

/** The head's inputs for a batch of rows. */
export interface SamplingHeadInput {
  rows: number;
  /** [rows] 1 / temperature (1 for greedy rows). */
  inverseTemperature: Float32Array;
  /** [rows] the uniform number that draws each row's block. */
  blockUniform: Float32Array;
  /** How many top candidates the head returns per row; 0 skips the search. */
  topCount: number;
  /** Also return the full probabilities (for top-p sets larger than the candidates). */
  fetchProbabilities: boolean;
}

/** The head's outputs for a batch of rows. */
export interface SamplingHeadOutputs {
  /** [rows] */
  sampledBlock: BigInt64Array;
  /** [rows, DRAW_BLOCK] */
  blockProbabilities: Float32Array;
  /** [rows, candidate blocks]; empty when topCount was 0 (as are the next two) */
  candidateBlocks: BigInt64Array;
  /** [rows, topCount] */
  candidatePositions: BigInt64Array;
  candidateProbabilities: Float32Array;
  /** [rows, padded vocabulary] when fetched. */
  probabilities: Float32Array | null;
}

// ONNX Runtime only reads inputs, so constant ones can be shared by every run.
const SEARCH = new Tensor('bool', Uint8Array.of(1), []);
const NO_SEARCH = new Tensor('bool', Uint8Array.of(0), []);

const NO_INT64 = new BigInt64Array(0);
const NO_FLOAT32 = new Float32Array(0);
const NO_IDS = new Int32Array(0);

export function samplingHeadFeeds(input: SamplingHeadInput): Record<string, Tensor> {
  return {
    [SAMPLING_HEAD.inverseTemperature]: new Tensor('float32', input.inverseTemperature, [input.rows]),
    [SAMPLING_HEAD.blockUniform]: new Tensor('float32', input.blockUniform, [input.rows, 1]),
    [SAMPLING_HEAD.topCount]: new Tensor('int64', BigInt64Array.of(BigInt(Math.max(1, input.topCount))), [1]),
    [SAMPLING_HEAD.searchCandidates]: input.topCount > 0 ? SEARCH : NO_SEARCH,
  };
}

/** The head outputs a run must fetch (the decoder adds its cache). */
export function samplingHeadFetches(input: Pick<SamplingHeadInput, 'topCount' | 'fetchProbabilities'>): string[] {
  const fetches: string[] = [SAMPLING_HEAD.sampledBlock, SAMPLING_HEAD.blockProbabilities];
  if (input.topCount > 0) {
    fetches.push(SAMPLING_HEAD.candidateBlocks, SAMPLING_HEAD.candidatePositions, SAMPLING_HEAD.candidateProbabilities);
  }
  if (input.fetchProbabilities) fetches.push(SAMPLING_HEAD.probabilities);
  return fetches;
}

/** Outputs not fetched are not read (every conversion to a JavaScript tensor costs time per step). */
export function readSamplingHeadOutputs(
  outputs: Record<string, Tensor>,
  input: Pick<SamplingHeadInput, 'topCount' | 'fetchProbabilities'>,
): SamplingHeadOutputs {
  const readsCandidates = input.topCount > 0;
  return {
    sampledBlock: outputs[SAMPLING_HEAD.sampledBlock].data as BigInt64Array,
    blockProbabilities: outputs[SAMPLING_HEAD.blockProbabilities].data as Float32Array,
    candidateBlocks: readsCandidates ? (outputs[SAMPLING_HEAD.candidateBlocks].data as BigInt64Array) : NO_INT64,
    candidatePositions: readsCandidates ? (outputs[SAMPLING_HEAD.candidatePositions].data as BigInt64Array) : NO_INT64,
    candidateProbabilities: readsCandidates
      ? (outputs[SAMPLING_HEAD.candidateProbabilities].data as Float32Array)
      : NO_FLOAT32,
    probabilities: input.fetchProbabilities ? (outputs[SAMPLING_HEAD.probabilities].data as Float32Array) : null,
  };
}

/**
 * Row `row`'s share of the head's outputs, with its first `needed` candidates as vocabulary ids (the head
 * returns positions in the candidate blocks laid end to end).
 */
export function rowHeadOutputs(
  outputs: SamplingHeadOutputs,
  shape: { rows: number; topCount: number; vocabularySize: number; paddedVocabularySize: number },
  row: number,
  needed: number,
): RowHeadOutputs {
  const { rows, topCount, vocabularySize, paddedVocabularySize } = shape;
  const candidateBlocks = topCount === 0 ? 0 : outputs.candidateBlocks.length / rows;
  // Plain temperature rows (every token of a training rollout) read no candidates: nothing to allocate.
  const ids = needed === 0 ? NO_IDS : new Int32Array(needed);
  for (let i = 0; i < needed; i++) {
    const position = Number(outputs.candidatePositions[row * topCount + i]);
    ids[i] =
      Number(outputs.candidateBlocks[row * candidateBlocks + Math.floor(position / SEARCH_BLOCK)]) * SEARCH_BLOCK +
      (position % SEARCH_BLOCK);
  }
  return {
    blockStart: Number(outputs.sampledBlock[row]) * DRAW_BLOCK,
    blockProbabilities: outputs.blockProbabilities.subarray(row * DRAW_BLOCK, (row + 1) * DRAW_BLOCK),
    candidateIds: ids,
    candidateProbabilities:
      needed === 0 ? NO_FLOAT32 : outputs.candidateProbabilities.subarray(row * topCount, row * topCount + needed),
    probabilities:
      outputs.probabilities === null
        ? null
        : outputs.probabilities.subarray(row * paddedVocabularySize, row * paddedVocabularySize + vocabularySize),
  };
}
