/**
 * Appends a sampling head to a decoder graph in memory (the file on disk is not touched), so the work that
 * touches every vocabulary entry runs inside ONNX Runtime, vectorised and threaded, instead of in
 * JavaScript (one pass over Qwen's 152K logits in JS costs about as much as a decode step of a small model).
 *
 * 1. Only the last position is sent through the output head: when the head is `logits = MatMul(hidden, W)`
 *    with a 2-D weight (optimum's exports and ours), the hidden state is sliced to its last position before
 *    the MatMul, which avoids a [batch, prompt, vocab] tensor at prefill; otherwise the logits are sliced.
 *    The temperature is applied there too: scaled = logits / T.
 * 2. Ids the tokenizer cannot decode (Qwen pads its embedding beyond the tokenizer) and the padding up to
 *    whole blocks get probability 0: a mask row folded into the output head's weight when the MatMul is
 *    moved (no extra pass over the vocabulary), an Add otherwise.
 * 3. probabilities = softmax(scaled). Per row:
 *    - a block of DRAW_BLOCK ids drawn by inverse CDF over the block masses with the row's uniform number,
 *      returned with the probabilities of its ids (sampling.ts draws the id inside it: two-stage inverse CDF);
 *    - the top `top_count` probabilities, found inside the top `top_count` blocks of SEARCH_BLOCK ids by
 *      block maximum (the top k ids always lie in the top k blocks), returned as positions in those blocks;
 *      skipped (an If node) when no row reads candidates, as in plain temperature sampling.
 *    Nothing sorts or scans the vocabulary in JavaScript; the full probabilities are copied out only when a
 *    top-p set is larger than the candidates (sampling.ts).
 *
 * The head is a few large reductions and a handful of small nodes: per-node overhead matters at this size.
 */
import { ModelFolderError } from './errors';
import {
  DataType,
  GraphBuilder,
  graphAttr,
  intAttr,
  intsAttr,
  unshapedValueInfo,
  valueInfo,
  type onnx,
} from './onnx-graph';
import { DECODER_NAMES } from './tensor-names';

export const SAMPLING_HEAD = {
  /** [batch] 1 / temperature. */
  inverseTemperature: 'sampler.inverse_temperature',
  /** [batch, 1] the uniform number that draws the block. */
  blockUniform: 'sampler.block_uniform',
  /** [1] candidates per row (at least 1 when searching). */
  topCount: 'sampler.top_count',
  /** [] bool: run the candidate search (false when no row reads candidates). */
  searchCandidates: 'sampler.search_candidates',
  /** [batch, 1] the drawn block. */
  sampledBlock: 'sampler.sampled_block',
  /** [batch, DRAW_BLOCK] probabilities of the drawn block's ids. */
  blockProbabilities: 'sampler.block_probabilities',
  /** [batch, min(top_count, blocks)] the blocks holding the candidates, by block maximum. */
  candidateBlocks: 'sampler.candidate_blocks',
  /** [batch, top_count] candidate positions in the candidate blocks laid end to end, most probable first. */
  candidatePositions: 'sampler.candidate_positions',
  /** [batch, top_count] their probabilities. */
  candidateProbabilities: 'sampler.candidate_probabilities',
  /** [batch, padded vocabulary] every probability (fetched on demand). */
  probabilities: 'sampler.probabilities',
} as const;

/** Names of the sampling nodes start with this (profiles attribute time to sampling by it). */
export const SAMPLER_NODE_PREFIX = 'sampler/';

/**
 * Ids per block of the two-stage draw: the head draws a block, sampling.ts an id inside it. Larger blocks
 * mean fewer block masses to accumulate (CumSum) and compare per row; the vocabulary is padded to whole
 * blocks inside the output head's MatMul (Qwen's 151,936 ids: 297 blocks, 128 padding ids).
 */
export const DRAW_BLOCK = 512;
/** Ids per block of the candidate search: the top k ids lie in the k blocks with the largest maxima. */
export const SEARCH_BLOCK = 128;
/**
 * Added to the logits of ids that must never be drawn: exp of it underflows to exactly 0, and adding any
 * finite logit to it cannot overflow to -Infinity.
 */
const MASKED = -1e30;

export interface SamplingHeadInfo {
  /** True when the head MatMul was moved after the last-position slice (no full-sequence logits). */
  slicedBeforeHead: boolean;
  /** Number of vocabulary entries the head samples from. */
  vocabularySize: number;
  /** Length of the probabilities output (the vocabulary padded to whole blocks). */
  paddedVocabularySize: number;
}

/** True when `name` is a 2-D initializer, or a Transpose of one. */
function twoDimensionalWeight(graph: onnx.IGraphProto, name: string): boolean {
  const initializer = (graph.initializer ?? []).find((tensor) => tensor.name === name);
  if (initializer !== undefined) return (initializer.dims ?? []).length === 2;
  const producer = (graph.node ?? []).find((node) => (node.output ?? []).includes(name));
  if (producer?.opType === 'Transpose' && producer.input?.[0] !== undefined && producer.input[0] !== name) {
    return twoDimensionalWeight(graph, producer.input[0]);
  }
  return false;
}

/**
 * Mutates `model`: replaces the `logits` output by the sampling head's inputs and outputs.
 * `modelVocabularySize` is the logits' last dimension, `usableVocabularySize` how many ids may be sampled.
 */
export function attachSamplingHead(
  model: onnx.IModelProto,
  modelVocabularySize: number,
  usableVocabularySize: number,
  source: string,
): SamplingHeadInfo {
  const graph = model.graph;
  if (!graph) throw new ModelFolderError(source, 'the ONNX model has no graph');
  const nodes = graph.node ?? [];
  const logitsName = DECODER_NAMES.logits;
  const producerIndex = nodes.findIndex((node) => (node.output ?? []).includes(logitsName));
  if (producerIndex < 0) throw new ModelFolderError(source, 'no node produces the "logits" output');
  const producer = nodes[producerIndex];
  const consumedElsewhere = nodes.some((node) => (node.input ?? []).includes(logitsName));
  // The last-position slice and the moved output head are model work, not sampling: their nodes get
  // their own prefix, and come first in the node list (which must stay topologically sorted).
  const lastPosition = new GraphBuilder('last-position/');
  const g = new GraphBuilder(SAMPLER_NODE_PREFIX);
  const axis = (value: number) => ({ axis: intAttr(value) });
  const lastIndex = lastPosition.int64Constant([-1], []);
  const inverseTemperature = lastPosition.op('Unsqueeze', [
    SAMPLING_HEAD.inverseTemperature,
    lastPosition.int64Constant([1]),
  ]);

  const padded = Math.ceil(modelVocabularySize / DRAW_BLOCK) * DRAW_BLOCK;
  // Per column: 0 for ids that may be sampled, MASKED for ids the tokenizer cannot decode and for padding.
  const maskRow = new Float32Array(padded).fill(MASKED, usableVocabularySize);
  const needsMask = usableVocabularySize < padded;

  let scaled: string;
  const slicedBeforeHead =
    producer.opType === 'MatMul' &&
    !consumedElsewhere &&
    producer.input?.length === 2 &&
    twoDimensionalWeight(graph, producer.input[1]);
  if (slicedBeforeHead) {
    // logits [batch, seq, vocab] = MatMul(hidden, W [hidden, vocab]): hidden is rank 3 because the
    // output is, so its axis 1 is the sequence.
    const [hidden, weight] = producer.input as string[];
    let lastHidden = lastPosition.op('Mul', [
      lastPosition.op('Gather', [hidden, lastIndex], axis(1)),
      inverseTemperature,
    ]);
    let headWeight = weight;
    if (needsMask) {
      // The mask and the padding go into the MatMul, not after it: the weight gets zero columns up to whole
      // blocks and one more row holding the mask, and the hidden state a last feature of 1. For the ids
      // that may be sampled the extra term adds exactly 0. The weight is constant, so ONNX Runtime folds
      // this once when the session is created; a separate Add over [batch, vocab] cost about 5% of a
      // batch-8 decode step of the ~25M-parameter benchmark model.
      if (padded > modelVocabularySize)
        headWeight = lastPosition.op('Pad', [
          headWeight,
          lastPosition.int64Constant([0, 0, 0, padded - modelVocabularySize]),
        ]);
      headWeight = lastPosition.op(
        'Concat',
        [headWeight, lastPosition.floatConstant(maskRow, [1, padded])],
        axis(0),
      );
      lastHidden = lastPosition.op('Pad', [
        lastHidden,
        lastPosition.int64Constant([0, 0, 0, 1]),
        lastPosition.floatConstant([1], []),
      ]);
    }
    scaled = lastPosition.op('MatMul', [lastHidden, headWeight]);
    nodes.splice(producerIndex, 1);
  } else {
    scaled = g.op('Mul', [lastPosition.op('Gather', [logitsName, lastIndex], axis(1)), inverseTemperature]);
    if (padded > modelVocabularySize) {
      scaled = g.op('Pad', [
        scaled,
        g.int64Constant([0, 0, 0, padded - modelVocabularySize]),
        g.floatConstant([MASKED], []),
      ]);
    }
    if (needsMask) scaled = g.op('Add', [scaled, g.floatConstant(maskRow)]);
  }
  const probabilities = g.op('Softmax', [scaled], axis(1), SAMPLING_HEAD.probabilities);
  const drawBlocks = g.op('Reshape', [probabilities, g.int64Constant([0, padded / DRAW_BLOCK, DRAW_BLOCK])]);

  // The block: the first whose cumulative mass exceeds u × (the cumulative sum's own total).
  const cumulative = g.op('CumSum', [
    g.op('ReduceSum', [drawBlocks, g.int64Constant([2])], { keepdims: intAttr(0) }),
    g.int64Constant([1], []),
  ]);
  const threshold = g.op('Mul', [
    g.op('Gather', [cumulative, g.int64Constant([-1])], axis(1)),
    SAMPLING_HEAD.blockUniform,
  ]);
  const beyond = g.op('Cast', [g.op('Greater', [cumulative, threshold])], { to: intAttr(DataType.INT32) });
  const sampledBlock = g.op(
    'ArgMax',
    [beyond],
    { axis: intAttr(1), keepdims: intAttr(1) },
    SAMPLING_HEAD.sampledBlock,
  );
  g.op('GatherND', [drawBlocks, sampledBlock], { batch_dims: intAttr(1) }, SAMPLING_HEAD.blockProbabilities);

  // Candidates, when a row reads any: the top ids lie in the blocks with the top maxima.
  const searchCandidates = g.branch('candidates', (c) => {
    const blocks = padded / SEARCH_BLOCK;
    const searchBlocks = c.op('Reshape', [probabilities, c.int64Constant([0, blocks, SEARCH_BLOCK])]);
    const blockMax = c.op('ReduceMax', [searchBlocks], { axes: intsAttr([2]), keepdims: intAttr(0) });
    const blockCount = c.op('Min', [SAMPLING_HEAD.topCount, c.int64Constant([blocks])]);
    const [, candidateBlocks] = c.node(
      'TopK',
      [blockMax, blockCount],
      { axis: intAttr(1), largest: intAttr(1), sorted: intAttr(1) },
      2,
    );
    const gathered = c.op(
      'GatherND',
      [searchBlocks, c.op('Unsqueeze', [candidateBlocks, c.int64Constant([2])])],
      { batch_dims: intAttr(1) },
    );
    const [candidateProbabilities, positions] = c.node(
      'TopK',
      [c.op('Reshape', [gathered, c.int64Constant([0, -1])]), SAMPLING_HEAD.topCount],
      { axis: intAttr(1), largest: intAttr(1), sorted: intAttr(1) },
      2,
    );
    return [
      { name: candidateBlocks, elemType: DataType.INT64 },
      { name: positions, elemType: DataType.INT64 },
      { name: candidateProbabilities, elemType: DataType.FLOAT },
    ];
  });
  const noCandidates = g.branch('no_candidates', (c) => [
    { name: c.op('Identity', [c.int64Constant([], [0])]), elemType: DataType.INT64 },
    { name: c.op('Identity', [c.int64Constant([], [0])]), elemType: DataType.INT64 },
    { name: c.op('Identity', [c.floatConstant([], [0])]), elemType: DataType.FLOAT },
  ]);
  g.node(
    'If',
    [SAMPLING_HEAD.searchCandidates],
    { then_branch: graphAttr(searchCandidates), else_branch: graphAttr(noCandidates) },
    [SAMPLING_HEAD.candidateBlocks, SAMPLING_HEAD.candidatePositions, SAMPLING_HEAD.candidateProbabilities],
  );

  graph.node = [...nodes, ...lastPosition.nodes, ...g.nodes];
  graph.initializer = [...(graph.initializer ?? []), ...lastPosition.initializers, ...g.initializers];
  graph.input = [
    ...(graph.input ?? []),
    valueInfo(SAMPLING_HEAD.inverseTemperature, DataType.FLOAT, ['batch_size']),
    valueInfo(SAMPLING_HEAD.blockUniform, DataType.FLOAT, ['batch_size', 1]),
    valueInfo(SAMPLING_HEAD.topCount, DataType.INT64, [1]),
    valueInfo(SAMPLING_HEAD.searchCandidates, DataType.BOOL, []),
  ];
  graph.output = [
    ...(graph.output ?? []).filter((output) => output.name !== logitsName),
    valueInfo(SAMPLING_HEAD.probabilities, DataType.FLOAT, ['batch_size', padded]),
    valueInfo(SAMPLING_HEAD.sampledBlock, DataType.INT64, ['batch_size', 1]),
    valueInfo(SAMPLING_HEAD.blockProbabilities, DataType.FLOAT, ['batch_size', DRAW_BLOCK]),
    // [batch, candidate blocks], [batch, top_count], [batch, top_count]; empty when not searched.
    unshapedValueInfo(SAMPLING_HEAD.candidateBlocks, DataType.INT64),
    unshapedValueInfo(SAMPLING_HEAD.candidatePositions, DataType.INT64),
    unshapedValueInfo(SAMPLING_HEAD.candidateProbabilities, DataType.FLOAT),
  ];
  return { slicedBeforeHead, vocabularySize: usableVocabularySize, paddedVocabularySize: padded };
}
