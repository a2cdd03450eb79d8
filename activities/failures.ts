/**
 * How activities fail: bad input fails fast (non-retryable, with the original message), everything else is left
 * to Temporal's retry policy; long activities heartbeat. Shared by every activity module, and light to import:
 * error classes come from their own modules, so an orchestration worker never loads ONNX Runtime through here.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { AgentInputError } from '../lib/agent';
import { DatasetFormatError } from '../lib/data/dataset';
import { EpisodeInputError } from '../lib/episode/errors';
import { ConfigSchemaError } from '../lib/model/config';
import {
  ChatTemplateError,
  ExecutionProviderError,
  GenerationRequestError,
  ModelFolderError,
  ModelSpecError,
  SafetensorsError,
} from '../lib/model/errors';
import { BlobStoreError, InvalidBlobIdError } from '../lib/storage';
import { StoredModelError } from '../lib/training/checkpoint-errors';
import { TrainingInputError } from '../lib/training/errors';
import { ScoringInputError } from '../lib/training/scoring';
import { ConfigError } from '../temporal.config';

/**
 * Every class of error that no retry can fix: bad datasets, documents, prompts and chat templates, model folders,
 * weights and specs, configuration, keys and ids, stored checkpoints and policy versions (missing, corrupt, in
 * conflict), rollouts that cannot be scored, training batches and settings the trainer cannot use. A deterministic error left out of this list retries forever.
 */
export const BAD_INPUT_ERRORS = [
  EpisodeInputError,
  AgentInputError,
  DatasetFormatError,
  GenerationRequestError,
  ChatTemplateError,
  ModelFolderError,
  ConfigSchemaError,
  SafetensorsError,
  ModelSpecError,
  ExecutionProviderError,
  InvalidBlobIdError,
  ConfigError,
  StoredModelError,
  ScoringInputError,
  TrainingInputError,
] as const;

/** True for errors that no retry can fix (see BAD_INPUT_ERRORS; a store error says itself whether it is one). */
export function isBadInput(error: unknown): error is Error {
  if (error instanceof BlobStoreError) return !error.retryable;
  return BAD_INPUT_ERRORS.some((errorClass) => error instanceof errorClass);
}

/**
 * A fault in the code itself (`x is not a function`, an undefined name): the same input fails the same way on
 * every attempt. Only for activities whose work is the project's own code over stored data (the batch
 * activities); where a third-party client sits in between, its occasional TypeError may be transient.
 */
export function isProgrammingError(error: unknown): error is Error {
  return error instanceof TypeError || error instanceof ReferenceError || error instanceof SyntaxError;
}

/**
 * Errors no retry can fix become non-retryable failures carrying the original message and error name; with
 * `programmingErrors`, so do faults in the code (named as such, so the run's failure says it is a bug).
 */
export async function failFastOnBadInput<T>(
  work: () => Promise<T>,
  options: { programmingErrors?: boolean } = {},
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isBadInput(error)) throw ApplicationFailure.nonRetryable(error.message, error.name);
    if (options.programmingErrors && isProgrammingError(error)) {
      throw ApplicationFailure.nonRetryable(
        `internal error, not retried (the same input fails the same way): ${error.name}: ${error.message}`,
        error.name,
      );
    }
    throw error;
  }
}

/**
 * Heartbeats every few seconds while `work` runs, so a dead worker is noticed after the heartbeat timeout.
 * `work` may report its progress through `beat`; the periodic heartbeats repeat the last report, so the
 * Temporal UI keeps showing it.
 */
export async function withHeartbeat<T>(
  work: (beat: (details: unknown) => void) => Promise<T>,
  intervalMs = 2000,
): Promise<T> {
  const context = Context.current();
  let last: unknown = undefined;
  const timer = setInterval(() => context.heartbeat(last), intervalMs);
  const beat = (details: unknown): void => {
    last = details;
    context.heartbeat(details);
  };
  try {
    return await work(beat);
  } finally {
    clearInterval(timer);
  }
}
