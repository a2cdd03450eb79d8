/**
 * Errors of trainer checkpoints and exported policy versions in the blob store. Each message is one line
 * naming the run and step (or the version), the file at fault and what was expected, so an activity can
 * report it as it is. None of them is helped by retrying: the stored objects stay as they are.
 */

/** Base of every checkpoint and policy version error. */
export class StoredModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** No manifest at the step, or the manifest names a file that is not there: a half-written checkpoint. */
export class CheckpointNotFoundError extends StoredModelError {
  constructor(
    readonly run: string,
    readonly step: number,
    detail: string,
  ) {
    super(`no complete checkpoint at step ${step} of run ${run} (${detail})`);
  }
}

/** A stored file whose size or sha256 differs from its manifest, or that cannot be parsed. */
export class CheckpointCorruptError extends StoredModelError {
  constructor(
    readonly key: string,
    detail: string,
  ) {
    super(`corrupt checkpoint file ${key}: ${detail}`);
  }
}

/** A complete checkpoint of another architecture or training configuration than the caller's. */
export class CheckpointMismatchError extends StoredModelError {}

/** A complete checkpoint or policy version already stored at the same place with other content. */
export class StoredContentConflictError extends StoredModelError {}

/** No manifest for the version in the blob store. */
export class PolicyVersionNotFoundError extends StoredModelError {
  constructor(
    readonly version: string,
    manifestKey: string,
  ) {
    super(`policy version ${version} does not exist in the blob store (no ${manifestKey})`);
  }
}

/** A stored or downloaded policy file that does not match its manifest, or a manifest that cannot be read. */
export class PolicyVersionCorruptError extends StoredModelError {
  constructor(
    readonly version: string,
    detail: string,
  ) {
    super(`policy version ${version} is corrupt: ${detail}`);
  }
}

/** Arguments a checkpoint or policy version cannot be written from (missing tensors, bad step, …). */
export class StoredModelInputError extends StoredModelError {}
