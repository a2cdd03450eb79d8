/**
 * The key/value cache of a batch: per layer, keys and values shaped [batch, kv_heads, columns, head_dim],
 * every row right-aligned (left padding). Decode steps pass the model's `present` outputs straight back as
 * `past` inputs; rows are only copied when the batch changes (rows leave, rows join, padding is trimmed).
 */
import { Tensor } from 'onnxruntime-node';
import { DECODER_NAMES } from './tensor-names';

export interface CacheShape {
  layers: number;
  kvHeads: number;
  headDim: number;
}

export class KvCache {
  private constructor(
    readonly shape: CacheShape,
    readonly rows: number,
    /** Columns per row: padding plus cached tokens. */
    readonly columns: number,
    /** [layer * 2 + 0] keys, [layer * 2 + 1] values. */
    private readonly tensors: Tensor[],
  ) {}

  static empty(shape: CacheShape, rows: number): KvCache {
    const tensors: Tensor[] = [];
    for (let i = 0; i < 2 * shape.layers; i++)
      tensors.push(new Tensor('float32', new Float32Array(0), [rows, shape.kvHeads, 0, shape.headDim]));
    return new KvCache(shape, rows, 0, tensors);
  }

  /** The cache a forward pass returned. */
  static fromPresent(shape: CacheShape, outputs: Record<string, Tensor>): KvCache {
    const tensors: Tensor[] = [];
    for (let layer = 0; layer < shape.layers; layer++)
      tensors.push(outputs[DECODER_NAMES.presentKey(layer)], outputs[DECODER_NAMES.presentValue(layer)]);
    const [rows, , columns] = tensors[0].dims;
    return new KvCache(shape, rows, columns, tensors);
  }

  /** Feeds for the next forward pass. */
  pastFeeds(): Record<string, Tensor> {
    const feeds: Record<string, Tensor> = {};
    for (let layer = 0; layer < this.shape.layers; layer++) {
      feeds[DECODER_NAMES.pastKey(layer)] = this.tensors[2 * layer];
      feeds[DECODER_NAMES.pastValue(layer)] = this.tensors[2 * layer + 1];
    }
    return feeds;
  }

  /**
   * A new cache of `columns` columns holding the chosen rows of several caches, in order, each
   * right-aligned: the last min(columns, source columns) columns are copied, the rest is zero padding.
   * Callers drop only columns that are padding for every kept row.
   */
  static assemble(
    shape: CacheShape,
    parts: readonly { cache: KvCache; rows: readonly number[] }[],
    columns: number,
  ): KvCache {
    const rowCount = parts.reduce((sum, part) => sum + part.rows.length, 0);
    const { kvHeads, headDim } = shape;
    const tensors: Tensor[] = [];
    for (let t = 0; t < 2 * shape.layers; t++) {
      const out = new Float32Array(rowCount * kvHeads * columns * headDim);
      let outRow = 0;
      for (const { cache, rows } of parts) {
        const source = cache.tensors[t].data as Float32Array;
        const kept = Math.min(columns, cache.columns);
        for (const row of rows) {
          for (let head = 0; head < kvHeads; head++) {
            const from = ((row * kvHeads + head) * cache.columns + (cache.columns - kept)) * headDim;
            const to = ((outRow * kvHeads + head) * columns + (columns - kept)) * headDim;
            out.set(source.subarray(from, from + kept * headDim), to);
          }
          outRow += 1;
        }
      }
      tensors.push(new Tensor('float32', out, [rowCount, kvHeads, columns, headDim]));
    }
    return new KvCache(shape, rowCount, columns, tensors);
  }
}
