/**
 * The ONNX Runtime execution providers a session can be created on; the config schema, the session factory
 * and their error messages take the list from here. No runtime import, so the config can load it cheaply.
 */
export const EXECUTION_PROVIDERS = ['cpu', 'cuda', 'webgpu'] as const;

export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];
