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
import { ExecutionProviderError, GenerationRequestError, ModelFolderError } from '../lib/model/errors';
import { BlobStoreError, InvalidBlobIdError } from '../lib/storage';

/** True for errors that no retry can fix: bad datasets, documents, prompts, model folders, keys and ids. */
export function isBadInput(error: unknown): error is Error {
  return (
    error instanceof EpisodeInputError ||
    error instanceof AgentInputError ||
    error instanceof DatasetFormatError ||
    error instanceof GenerationRequestError ||
    error instanceof ModelFolderError ||
    error instanceof ExecutionProviderError ||
    error instanceof InvalidBlobIdError ||
    (error instanceof BlobStoreError && !error.retryable)
  );
}

/** Errors no retry can fix become non-retryable failures carrying the original message and error name. */
export async function failFastOnBadInput<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isBadInput(error)) throw ApplicationFailure.nonRetryable(error.message, error.name);
    throw error;
  }
}

/** Heartbeats every few seconds while `work` runs, so a dead worker is noticed after the heartbeat timeout. */
export async function withHeartbeat<T>(work: () => Promise<T>, intervalMs = 2000): Promise<T> {
  const context = Context.current();
  const timer = setInterval(() => context.heartbeat(), intervalMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
