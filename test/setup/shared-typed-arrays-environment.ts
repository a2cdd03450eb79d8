/**
 * Jest's node environment gives each test file its own typed-array constructors, while onnxruntime-node's
 * native binding creates its outputs with the process's own, so `new Tensor(...)` on a session output fails
 * its `instanceof Float32Array` check. This environment shares the process's typed arrays with the tests
 * (Jest already shares ArrayBuffer and Uint8Array). jest.config.js makes it every suite's environment.
 */
import type { EnvironmentContext, JestEnvironmentConfig } from '@jest/environment';
import NodeEnvironment from 'jest-environment-node';

const SHARED = [
  'Int8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'DataView',
] as const;

export default class OnnxRuntimeEnvironment extends NodeEnvironment {
  constructor(config: JestEnvironmentConfig, context: EnvironmentContext) {
    super(config, context);
    const shared = this.global as unknown as Record<string, unknown>;
    for (const name of SHARED) shared[name] = (globalThis as unknown as Record<string, unknown>)[name];
  }
}
