/**
 * Errors raised by the model runtime. Each names what is wrong and what was expected, so a user can
 * fix their model folder, request or host without reading the code.
 */

/** A model folder (config, tokenizer, ONNX graph, weights) is missing a file or holds a bad one. */
export class ModelFolderError extends Error {
  override readonly name = 'ModelFolderError';
  constructor(
    /** The file at fault, as a path. */
    readonly file: string,
    /** What is wrong and what was expected. */
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** A safetensors buffer that does not follow the format. */
export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError';
}

/** A generation request with values outside what the runtime accepts. */
export class GenerationRequestError extends Error {
  override readonly name = 'GenerationRequestError';
}

/** The execution provider asked for cannot be loaded on this host. */
export class ExecutionProviderError extends Error {
  override readonly name = 'ExecutionProviderError';
}

/** A model or tokenizer description given to a builder that cannot be built. */
export class ModelSpecError extends Error {
  override readonly name = 'ModelSpecError';
}

/** A tokenizer without a chat template, or one whose template cannot render the messages as asked. */
export class ChatTemplateError extends Error {
  override readonly name = 'ChatTemplateError';
}

/** Work submitted to a policy after `dispose()`. */
export class PolicyDisposedError extends Error {
  override readonly name = 'PolicyDisposedError';
  constructor() {
    super('this policy has been disposed; load it again with loadPolicy(folder) to generate');
  }
}
