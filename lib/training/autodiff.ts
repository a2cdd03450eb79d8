/**
 * Reverse-mode automatic differentiation that writes ONNX: a model is written once against `AutodiffGraph`'s
 * operators, each of which emits its forward ONNX node and records a vector-Jacobian product (VJP) rule on a
 * tape; `gradients()` walks the tape backwards and emits the backward nodes into the same graph. ONNX Runtime
 * then runs forward + backward as one session, with the same kernels and execution providers as inference.
 *
 * Nothing is derived by hand per model: a model is just a composition of these operators, and every rule
 * is checked against finite differences (test/unit/training/autodiff.test.ts).
 *
 * Shapes are tracked at build time (a dimension is a number or a named symbol) so that broadcasting can be
 * undone exactly: the gradient of a broadcast input is summed over the axes it was broadcast along.
 */
import {
  DataType,
  GraphBuilder,
  IR_VERSION,
  encodeModel,
  intAttr,
  intsAttr,
  stringAttr,
  tensorAttr,
  valueInfo,
  type onnx,
} from '../model/onnx-graph';

/** Training graphs use opset 17: ScatterND / ScatterElements with reduction="add" and ReduceSum axes as input. */
export const AUTODIFF_OPSET = 17;

export type Dim = number | string;
export type FloatType = 'float32' | 'float64';

/** A value of the graph: its ONNX name, its shape, and whether any differentiable input reaches it. */
export interface Value {
  readonly name: string;
  readonly shape: readonly Dim[];
  readonly differentiable: boolean;
}

/** Given the gradients of an operation's outputs (null: no gradient flows there), the gradients of its inputs. */
type Backward = (outputGrads: readonly (string | null)[]) => (string | null)[];

interface TapeEntry {
  inputs: readonly Value[];
  outputs: readonly Value[];
  backward: Backward;
}

export class AutodiffShapeError extends Error {}

const onnxType = (type: FloatType): number => (type === 'float32' ? DataType.FLOAT : DataType.DOUBLE);

function floatTensor(
  name: string,
  type: FloatType,
  dims: readonly number[],
  values: readonly number[],
): onnx.ITensorProto {
  const array = type === 'float32' ? Float32Array.from(values) : Float64Array.from(values);
  return {
    name,
    dims: [...dims],
    dataType: onnxType(type),
    rawData: new Uint8Array(array.buffer, array.byteOffset, array.byteLength),
  };
}

/** Numpy broadcasting of two shapes; symbols broadcast only against 1 or the same symbol. */
export function broadcastShapes(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x === y || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else throw new AutodiffShapeError(`shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
  }
  return out;
}

const normaliseAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

export class AutodiffGraph {
  readonly g = new GraphBuilder();
  private readonly tape: TapeEntry[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];

  constructor(readonly floatType: FloatType) {}

  // ---- graph inputs, outputs, constants -------------------------------------------------------------

  /** A float input of the graph's float type; `differentiable` inputs get gradients. */
  floatInput(name: string, shape: readonly Dim[], differentiable: boolean): Value {
    this.inputs.push(valueInfo(name, onnxType(this.floatType), shape));
    return { name, shape, differentiable };
  }

  /** An int64 input (token ids, positions): never differentiable. */
  int64Input(name: string, shape: readonly Dim[]): Value {
    this.inputs.push(valueInfo(name, DataType.INT64, shape));
    return { name, shape, differentiable: false };
  }

  output(value: Value, name: string): Value {
    const named = this.g.op('Identity', [value.name], {}, name);
    this.outputs.push(valueInfo(named, onnxType(this.floatType), value.shape));
    return { ...value, name: named };
  }

  /** A float constant of the graph's float type. */
  constant(values: readonly number[], shape: readonly number[] = [values.length]): Value {
    const name = this.g.fresh('const');
    this.g.initializers.push(floatTensor(name, this.floatType, shape, values));
    return { name, shape, differentiable: false };
  }

  scalar(value: number): Value {
    return this.constant([value], []);
  }

  /** Wraps a value computed by plain ONNX nodes (no gradient flows through it). */
  nonDifferentiable(name: string, shape: readonly Dim[]): Value {
    return { name, shape, differentiable: false };
  }

  /**
   * Marks a value computed by plain ONNX nodes as a leaf that gets a gradient (ask for it in `gradients`'s
   * `wrt`), for a gradient finished outside the graph.
   */
  leaf(name: string, shape: readonly Dim[]): Value {
    return { name, shape, differentiable: true };
  }

  /** Emits the ONNX model. */
  encode(graphName: string): Uint8Array {
    return encodeModel({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: AUTODIFF_OPSET }],
      producerName: 'rememr1-autodiff',
      graph: {
        name: graphName,
        node: this.g.nodes,
        initializer: this.g.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
  }

  // ---- the tape ---------------------------------------------------------------------------------------

  private record(
    opType: string,
    inputs: readonly Value[],
    attributes: Parameters<GraphBuilder['op']>[2],
    shape: readonly Dim[],
    backward: Backward,
    nodeInputs: readonly string[] = inputs.map((input) => input.name),
  ): Value {
    const name = this.g.op(opType, nodeInputs, attributes);
    const output: Value = { name, shape, differentiable: inputs.some((input) => input.differentiable) };
    if (output.differentiable) this.tape.push({ inputs, outputs: [output], backward });
    return output;
  }

  /**
   * Emits the backward pass: `seeds` give d(objective)/d(output) for some outputs; returns the gradient's
   * name for each value of `wrt` (a zero tensor when nothing reaches it).
   */
  gradients(seeds: readonly { value: Value; grad: Value }[], wrt: readonly Value[]): Map<string, string> {
    const grads = new Map<string, string>();
    const accumulate = (name: string, grad: string): void => {
      const existing = grads.get(name);
      grads.set(name, existing === undefined ? grad : this.g.op('Add', [existing, grad]));
    };
    for (const seed of seeds) accumulate(seed.value.name, seed.grad.name);
    for (let i = this.tape.length - 1; i >= 0; i--) {
      const entry = this.tape[i];
      const outputGrads = entry.outputs.map((output) => grads.get(output.name) ?? null);
      if (outputGrads.every((grad) => grad === null)) continue;
      const inputGrads = entry.backward(outputGrads);
      entry.inputs.forEach((input, k) => {
        const grad = inputGrads[k];
        if (input.differentiable && grad !== null) accumulate(input.name, grad);
      });
    }
    const out = new Map<string, string>();
    for (const value of wrt) out.set(value.name, grads.get(value.name) ?? this.zerosLike(value));
    return out;
  }

  // ---- helpers used by the rules ----------------------------------------------------------------------

  private zerosLike(value: Value): string {
    const zero = floatTensor(this.g.fresh('zero'), this.floatType, [1], [0]);
    return this.g.op('ConstantOfShape', [this.g.op('Shape', [value.name])], { value: tensorAttr(zero) });
  }

  private scalarName(value: number): string {
    return this.scalar(value).name;
  }

  /** Sums `grad` (of shape `gradShape`) down to `target` (undoes numpy broadcasting). */
  private unbroadcast(grad: string, gradShape: readonly Dim[], target: Value): string {
    const offset = gradShape.length - target.shape.length;
    const axes: number[] = [];
    for (let i = 0; i < gradShape.length; i++) {
      const dim = i < offset ? 1 : target.shape[i - offset];
      if (dim === 1 && gradShape[i] !== 1) axes.push(i);
      else if (i < offset) axes.push(i);
    }
    let out = grad;
    if (axes.length > 0)
      out = this.g.op('ReduceSum', [grad, this.g.int64Constant(axes)], { keepdims: intAttr(1) });
    if (offset > 0 || axes.length > 0) out = this.g.op('Reshape', [out, this.g.op('Shape', [target.name])]);
    return out;
  }

  // ---- elementwise ------------------------------------------------------------------------------------

  add(a: Value, b: Value): Value {
    const shape = broadcastShapes(a.shape, b.shape);
    return this.record('Add', [a, b], {}, shape, ([g]) => [
      this.unbroadcast(g!, shape, a),
      this.unbroadcast(g!, shape, b),
    ]);
  }

  sub(a: Value, b: Value): Value {
    const shape = broadcastShapes(a.shape, b.shape);
    return this.record('Sub', [a, b], {}, shape, ([g]) => [
      this.unbroadcast(g!, shape, a),
      this.unbroadcast(this.g.op('Neg', [g!]), shape, b),
    ]);
  }

  /** d(a·b) = b·g, a·g */
  mul(a: Value, b: Value): Value {
    const shape = broadcastShapes(a.shape, b.shape);
    return this.record('Mul', [a, b], {}, shape, ([g]) => [
      a.differentiable ? this.unbroadcast(this.g.op('Mul', [g!, b.name]), shape, a) : null,
      b.differentiable ? this.unbroadcast(this.g.op('Mul', [g!, a.name]), shape, b) : null,
    ]);
  }

  /** d(a/b) = g/b, −g·(a/b)/b */
  div(a: Value, b: Value): Value {
    const shape = broadcastShapes(a.shape, b.shape);
    const out = this.record('Div', [a, b], {}, shape, ([g]) => {
      const gOverB = this.g.op('Div', [g!, b.name]);
      return [
        a.differentiable ? this.unbroadcast(gOverB, shape, a) : null,
        b.differentiable
          ? this.unbroadcast(this.g.op('Neg', [this.g.op('Mul', [gOverB, out.name])]), shape, b)
          : null,
      ];
    });
    return out;
  }

  neg(x: Value): Value {
    return this.record('Neg', [x], {}, x.shape, ([g]) => [this.g.op('Neg', [g!])]);
  }

  /** d√x = g / (2√x) */
  sqrt(x: Value): Value {
    const out = this.record('Sqrt', [x], {}, x.shape, ([g]) => [
      this.g.op('Div', [g!, this.g.op('Mul', [out.name, this.scalarName(2)])]),
    ]);
    return out;
  }

  /** dσ(x) = g·σ·(1 − σ) */
  sigmoid(x: Value): Value {
    const out = this.record('Sigmoid', [x], {}, x.shape, ([g]) => [
      this.g.op('Mul', [this.g.op('Mul', [g!, out.name]), this.g.op('Sub', [this.scalarName(1), out.name])]),
    ]);
    return out;
  }

  /** Where(condition, x, fill) with a bool `condition`: the gradient flows where the condition holds. */
  whereElse(condition: string, x: Value, fill: number): Value {
    return this.record(
      'Where',
      [x],
      {},
      x.shape,
      ([g]) => [this.g.op('Where', [condition, g!, this.scalarName(0)])],
      [condition, x.name, this.scalarName(fill)],
    );
  }

  // ---- reductions and normalisations ------------------------------------------------------------------

  /** Mean over the last axis, kept: d = expand(g)/n */
  meanLastAxis(x: Value): Value {
    const n = x.shape[x.shape.length - 1];
    if (typeof n !== 'number') throw new AutodiffShapeError('meanLastAxis needs a fixed last dimension');
    const shape = [...x.shape.slice(0, -1), 1];
    return this.record('ReduceMean', [x], { axes: intsAttr([-1]), keepdims: intAttr(1) }, shape, ([g]) => [
      this.g.op('Expand', [this.g.op('Mul', [g!, this.scalarName(1 / n)]), this.g.op('Shape', [x.name])]),
    ]);
  }

  /** Sum over the last axis, kept: d = expand(g) */
  sumLastAxis(x: Value): Value {
    const shape = [...x.shape.slice(0, -1), 1];
    return this.record(
      'ReduceSum',
      [x],
      { keepdims: intAttr(1) },
      shape,
      ([g]) => [this.g.op('Expand', [g!, this.g.op('Shape', [x.name])])],
      [x.name, this.g.int64Constant([-1])],
    );
  }

  /** softmax over the last axis: dx = y·(g − Σ g·y) */
  softmax(x: Value): Value {
    const out = this.record('Softmax', [x], { axis: intAttr(-1) }, x.shape, ([g]) => {
      const dot = this.g.op('ReduceSum', [this.g.op('Mul', [g!, out.name]), this.g.int64Constant([-1])], {
        keepdims: intAttr(1),
      });
      return [this.g.op('Mul', [out.name, this.g.op('Sub', [g!, dot])])];
    });
    return out;
  }

  /** log-softmax over the last axis: dx = g − exp(y)·Σ g */
  logSoftmax(x: Value): Value {
    const out = this.record('LogSoftmax', [x], { axis: intAttr(-1) }, x.shape, ([g]) => {
      const total = this.g.op('ReduceSum', [g!, this.g.int64Constant([-1])], { keepdims: intAttr(1) });
      return [this.g.op('Sub', [g!, this.g.op('Mul', [this.g.op('Exp', [out.name]), total])])];
    });
    return out;
  }

  // ---- products --------------------------------------------------------------------------------------

  /** Batched a[..., m, k] @ b[..., k, n] with equal batch dims: da = g·bᵀ, db = aᵀ·g */
  matmul(a: Value, b: Value): Value {
    if (a.shape.length !== b.shape.length || a.shape.length < 2) {
      throw new AutodiffShapeError(
        `matmul needs two tensors of one rank ≥ 2, got [${a.shape}] and [${b.shape}]`,
      );
    }
    const rank = a.shape.length;
    const swap = [...Array(rank - 2).keys(), rank - 1, rank - 2];
    const shape = [...a.shape.slice(0, -1), b.shape[rank - 1]];
    return this.record('MatMul', [a, b], {}, shape, ([g]) => [
      a.differentiable
        ? this.g.op('MatMul', [g!, this.g.op('Transpose', [b.name], { perm: intsAttr(swap) })])
        : null,
      b.differentiable
        ? this.g.op('MatMul', [this.g.op('Transpose', [a.name], { perm: intsAttr(swap) }), g!])
        : null,
    ]);
  }

  /**
   * A linear layer in Hugging Face's layout, x[n, in] · w[out, in]ᵀ + b[out] (Gemm, transB=1):
   * dx = g·w, dw = gᵀ·x, db = Σₙ g.
   */
  linear(x: Value, w: Value, b?: Value): Value {
    const shape = [x.shape[0], w.shape[0]];
    const inputs = b === undefined ? [x, w] : [x, w, b];
    return this.record('Gemm', inputs, { transB: intAttr(1) }, shape, ([g]) => [
      x.differentiable ? this.g.op('Gemm', [g!, w.name]) : null,
      w.differentiable ? this.g.op('Gemm', [g!, x.name], { transA: intAttr(1) }) : null,
      ...(b === undefined
        ? []
        : [this.g.op('ReduceSum', [g!, this.g.int64Constant([0])], { keepdims: intAttr(0) })]),
    ]);
  }

  // ---- indexing ----------------------------------------------------------------------------------------

  /** Rows of `table` at int64 `indices` [n]: the gradient scatters back with addition (repeated rows add up). */
  gatherRows(table: Value, indices: Value): Value {
    const shape = [indices.shape[0], ...table.shape.slice(1)];
    return this.record('Gather', [table, indices], { axis: intAttr(0) }, shape, ([g]) => [
      this.g.op(
        'ScatterND',
        [this.zerosLike(table), this.g.op('Unsqueeze', [indices.name, this.g.int64Constant([1])]), g!],
        { reduction: stringAttr('add') },
      ),
      null,
    ]);
  }

  /** x[i, indices[i]] for x [n, v] and int64 indices [n]: a [n] vector. */
  pickPerRow(x: Value, indices: Value): Value {
    const column = this.g.op('Unsqueeze', [indices.name, this.g.int64Constant([1])]);
    const picked = this.g.op('GatherElements', [x.name, column], { axis: intAttr(1) });
    const name = this.g.op('Reshape', [picked, this.g.int64Constant([-1])]);
    const out: Value = { name, shape: [x.shape[0]], differentiable: x.differentiable };
    if (out.differentiable) {
      this.tape.push({
        inputs: [x],
        outputs: [out],
        backward: ([g]) => [
          this.g.op(
            'ScatterElements',
            [this.zerosLike(x), column, this.g.op('Unsqueeze', [g!, this.g.int64Constant([1])])],
            { axis: intAttr(1), reduction: stringAttr('add') },
          ),
        ],
      });
    }
    return out;
  }

  // ---- layout ------------------------------------------------------------------------------------------

  transpose(x: Value, perm: readonly number[]): Value {
    const inverse = new Array<number>(perm.length);
    perm.forEach((p, i) => (inverse[p] = i));
    return this.record(
      'Transpose',
      [x],
      { perm: intsAttr([...perm]) },
      perm.map((p) => x.shape[p]),
      ([g]) => [this.g.op('Transpose', [g!], { perm: intsAttr(inverse) })],
    );
  }

  /** Repeats along a new axis by broadcasting (x gets a unit axis at `axis`, expanded to `count`). */
  repeatAxis(x: Value, axis: number, count: number): Value {
    const rank = x.shape.length + 1;
    const at = normaliseAxis(axis, rank);
    const unit = this.reshapeTo(x, [...x.shape.slice(0, at), 1, ...x.shape.slice(at)]);
    const shape = [...x.shape.slice(0, at), count, ...x.shape.slice(at)];
    const target = this.g.int64Constant(shape.map((d) => (typeof d === 'number' ? d : 1)));
    return this.record('Expand', [unit], {}, shape, ([g]) => [this.unbroadcast(g!, shape, unit)], [
      unit.name,
      target,
    ]);
  }

  /**
   * Reshape. Fixed dimensions go anywhere; a symbol must sit at the same index as in the input (the target
   * holds 0 there, which ONNX reads as "copy the input's dimension").
   */
  reshapeTo(x: Value, shape: readonly Dim[]): Value {
    shape.forEach((d, i) => {
      if (typeof d === 'string' && x.shape[i] !== d) {
        throw new AutodiffShapeError(
          `reshape of [${x.shape.join(', ')}] to [${shape.join(', ')}] moves symbol ${d}`,
        );
      }
    });
    const target = this.g.int64Constant(shape.map((d) => (typeof d === 'number' ? d : 0)));
    return this.record(
      'Reshape',
      [x],
      {},
      shape,
      ([g]) => [this.g.op('Reshape', [g!, this.g.op('Shape', [x.name])])],
      [x.name, target],
    );
  }

  /** Splits the last axis into parts of the given sizes. */
  splitLastAxis(x: Value, sizes: readonly number[]): Value[] {
    const names = this.g.node(
      'Split',
      [x.name, this.g.int64Constant(sizes)],
      { axis: intAttr(-1) },
      sizes.length,
    );
    const outputs: Value[] = names.map((name, i) => ({
      name,
      shape: [...x.shape.slice(0, -1), sizes[i]],
      differentiable: x.differentiable,
    }));
    if (x.differentiable) {
      this.tape.push({
        inputs: [x],
        outputs,
        backward: (grads) => [
          this.g.op(
            'Concat',
            grads.map((grad, i) => grad ?? this.zerosLike(outputs[i])),
            { axis: intAttr(-1) },
          ),
        ],
      });
    }
    return outputs;
  }

  /** Concatenates along the last axis (whose sizes must be fixed). */
  concatLastAxis(parts: readonly Value[]): Value {
    const sizes = parts.map((part) => part.shape[part.shape.length - 1]);
    if (sizes.some((size) => typeof size !== 'number')) {
      throw new AutodiffShapeError('concatLastAxis needs fixed last dimensions');
    }
    const total = (sizes as number[]).reduce((a, b) => a + b, 0);
    const shape = [...parts[0].shape.slice(0, -1), total];
    return this.record('Concat', parts, { axis: intAttr(-1) }, shape, ([g]) =>
      this.g.node(
        'Split',
        [g!, this.g.int64Constant(sizes as number[])],
        { axis: intAttr(-1) },
        parts.length,
      ),
    );
  }
}
