/**
 * Helpers for writing and reading ONNX protobufs with `onnx-proto`: a small graph builder (unique names,
 * typed attributes, constants as initializers), tensor and value-info constructors, and readers that turn
 * the protobuf's int64 `Long`s and shapes into plain numbers.
 */
import { onnx } from 'onnx-proto';

export const DataType = onnx.TensorProto.DataType;
export const EXTERNAL_DATA_LOCATION = onnx.TensorProto.DataLocation.EXTERNAL;

/** The ONNX IR version and default-domain opset the project writes (what ORT 1.30 runs well). */
export const IR_VERSION = 8;
export const OPSET_VERSION = 17;

/** A 64-bit integer as protobufjs decodes it: a number, or a Long-like object. */
type Int64Like = number | { toNumber(): number };

export function int64ToNumber(value: Int64Like | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}

export type Attribute =
  | { kind: 'int'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: onnx.ITensorProto }
  | { kind: 'graph'; value: onnx.IGraphProto };

export const intAttr = (value: number): Attribute => ({ kind: 'int', value });
export const intsAttr = (value: number[]): Attribute => ({ kind: 'ints', value });
export const graphAttr = (value: onnx.IGraphProto): Attribute => ({ kind: 'graph', value });
export const stringAttr = (value: string): Attribute => ({ kind: 'string', value });
export const tensorAttr = (value: onnx.ITensorProto): Attribute => ({ kind: 'tensor', value });

function toAttributeProto(name: string, attribute: Attribute): onnx.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  switch (attribute.kind) {
    case 'int':
      return { name, type: AttributeType.INT, i: attribute.value };
    case 'ints':
      return { name, type: AttributeType.INTS, ints: attribute.value };
    case 'string':
      return { name, type: AttributeType.STRING, s: new TextEncoder().encode(attribute.value) };
    case 'tensor':
      return { name, type: AttributeType.TENSOR, t: attribute.value };
    case 'graph':
      return { name, type: AttributeType.GRAPH, g: attribute.value };
  }
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

export function float32Tensor(
  name: string,
  dims: readonly number[],
  values: Float32Array,
): onnx.ITensorProto {
  return { name, dims: [...dims], dataType: DataType.FLOAT, rawData: bytesOf(values) };
}

export function int64Tensor(
  name: string,
  dims: readonly number[],
  values: readonly number[],
): onnx.ITensorProto {
  return {
    name,
    dims: [...dims],
    dataType: DataType.INT64,
    rawData: bytesOf(BigInt64Array.from(values, (v) => BigInt(v))),
  };
}

/** A float32 initializer whose bytes live in an external data file at `offset`. */
export function externalFloat32Tensor(
  name: string,
  dims: readonly number[],
  location: string,
  offset: number,
  byteLength: number,
): onnx.ITensorProto {
  return {
    name,
    dims: [...dims],
    dataType: DataType.FLOAT,
    dataLocation: EXTERNAL_DATA_LOCATION,
    externalData: [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(byteLength) },
    ],
  };
}

/** A graph input or output: element type and dims, where a string is a symbolic dimension. */
export function valueInfo(
  name: string,
  elemType: number,
  dims: readonly (number | string)[],
): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((dim) => (typeof dim === 'number' ? { dimValue: dim } : { dimParam: dim })) },
      },
    },
  };
}

/** A graph input or output with an element type and no declared shape. */
export function unshapedValueInfo(name: string, elemType: number): onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType } } };
}

/** A dimension as declared in a graph: a fixed size, a symbol, or nothing at all. */
export type DeclaredDim = number | string | null;

export interface DeclaredTensor {
  name: string;
  /** The ONNX element type (DataType), or 0 when the value is not a tensor. */
  elemType: number;
  /** null when the rank itself is not declared. */
  dims: DeclaredDim[] | null;
}

export function describeValueInfo(info: onnx.IValueInfoProto): DeclaredTensor {
  const tensorType = info.type?.tensorType;
  const dims = tensorType?.shape?.dim;
  return {
    name: info.name ?? '',
    elemType: tensorType?.elemType ?? 0,
    dims:
      dims === undefined || dims === null
        ? null
        : dims.map((dim) =>
            dim.dimParam
              ? dim.dimParam
              : dim.dimValue !== undefined && dim.dimValue !== null
                ? int64ToNumber(dim.dimValue)
                : null,
          ),
  };
}

export function dataTypeName(elemType: number): string {
  const name = (DataType as unknown as Record<number, string | undefined>)[elemType];
  return name === undefined ? `type ${elemType}` : name.toLowerCase();
}

/**
 * Accumulates nodes and initializers with unique names. `prefix` keeps names apart from a graph this
 * builder's output is appended to.
 */
export class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  private counter = 0;

  constructor(private readonly prefix = '') {}

  fresh(hint: string): string {
    this.counter += 1;
    return `${this.prefix}${hint}_${this.counter}`;
  }

  /** Adds a node; returns its output names (fresh unless `outputs` names them). */
  node(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, Attribute> = {},
    outputs: number | readonly string[] = 1,
  ): string[] {
    const outputNames =
      typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(opType)) : [...outputs];
    this.nodes.push({
      name: this.fresh(`${opType}_node`),
      opType,
      input: [...inputs],
      output: outputNames,
      attribute: Object.entries(attributes).map(([name, attribute]) => toAttributeProto(name, attribute)),
    });
    return outputNames;
  }

  /** Adds a single-output node and returns the output name (or `output` when given). */
  op(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, Attribute> = {},
    output?: string,
  ): string {
    return this.node(opType, inputs, attributes, output === undefined ? 1 : [output])[0];
  }

  int64Constant(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const name = this.fresh('const_i64');
    this.initializers.push(int64Tensor(name, dims, values));
    return name;
  }

  floatConstant(values: readonly number[] | Float32Array, dims: readonly number[] = [values.length]): string {
    const name = this.fresh('const_f32');
    this.initializers.push(float32Tensor(name, dims, Float32Array.from(values)));
    return name;
  }

  /**
   * A branch of an If node: `build` adds nodes to a child builder (which may read any value of this graph)
   * and returns the branch's outputs with their element types.
   */
  branch(
    name: string,
    build: (child: GraphBuilder) => { name: string; elemType: number }[],
  ): onnx.IGraphProto {
    const child = new GraphBuilder(`${this.prefix}${name}/`);
    const outputs = build(child);
    return {
      name,
      node: child.nodes,
      initializer: child.initializers,
      output: outputs.map((output) => unshapedValueInfo(output.name, output.elemType)),
    };
  }
}

export function encodeModel(model: onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

export function decodeModel(bytes: Uint8Array): onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

export { onnx };
