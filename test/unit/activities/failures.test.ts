import { ApplicationFailure } from '@temporalio/common';
import { BAD_INPUT_ERRORS, failFastOnBadInput, isBadInput } from '../../../activities/failures';
import { AgentInputError, MemoryHistoryError, PromptTemplateError } from '../../../lib/agent';
import { DatasetFormatError, detectDatasetFormat } from '../../../lib/data/dataset';
import { EpisodeInputError } from '../../../lib/episode/errors';
import { ConfigSchemaError } from '../../../lib/model/config';
import {
  ChatTemplateError,
  ExecutionProviderError,
  GenerationRequestError,
  ModelFolderError,
  ModelSpecError,
  PolicyDisposedError,
  SafetensorsError,
} from '../../../lib/model/errors';
import {
  BlobNotFoundError,
  BlobStoreUnavailableError,
  InvalidBlobIdError,
  InvalidBlobKeyError,
  checkId,
} from '../../../lib/storage';
import { PolicyVersionNotFoundError } from '../../../lib/training/checkpoint-errors';
import { TrainingInputError } from '../../../lib/training/errors';
import { ScoringInputError } from '../../../lib/training/scoring';
import { ConfigError } from '../../../temporal.config';

/** One instance of every bad-input class, built as the code that raises it does. */
const badInputs: Error[] = [
  new EpisodeInputError('empty document'),
  new AgentInputError('bad input'),
  new PromptTemplateError('bad template', []),
  new MemoryHistoryError('step out of order'),
  new DatasetFormatError('not parquet'),
  new GenerationRequestError('maxNewTokens must be a positive integer'),
  new ChatTemplateError('no chat template'),
  new ModelFolderError('config.json', 'missing'),
  new ConfigSchemaError('config.json: hidden_size must be a number'),
  new SafetensorsError('header too large'),
  new ModelSpecError('vocabulary too small'),
  new ExecutionProviderError('cuda is not available'),
  new InvalidBlobIdError('run id', '../../etc', 'expected 1 to 128 characters'),
  new ConfigError(['REMEMR1_STORAGE: expected fs or s3']),
  new PolicyVersionNotFoundError('v9', 'policies/v9/manifest.json'),
  new ScoringInputError('group 0 has 1 rollout(s)'),
  new TrainingInputError('a training sequence has 40000 tokens; the model takes at most 32768'),
  new BlobNotFoundError('runs/a/input.json', 'store'),
  new InvalidBlobKeyError('../x', 'no dot segments'),
];

describe('activity failures', () => {
  it('treats every bad-input class as bad input, and trouble a retry can fix as not', () => {
    for (const errorClass of BAD_INPUT_ERRORS) {
      expect(badInputs.some((error) => error instanceof errorClass)).toBe(true);
    }
    for (const error of badInputs) expect([error.name, isBadInput(error)]).toEqual([error.name, true]);
    expect(isBadInput(new BlobStoreUnavailableError('connection refused'))).toBe(false);
    expect(isBadInput(new PolicyDisposedError())).toBe(false); // a worker shutting down: another one takes over
    expect(isBadInput(new Error('socket hang up'))).toBe(false);
  });

  it('turns each bad-input class into a non-retryable failure with the original message and name', async () => {
    for (const error of badInputs) {
      const failure = await failFastOnBadInput(async () => Promise.reject(error)).catch(
        (caught: unknown) => caught,
      );
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure).toMatchObject({ nonRetryable: true, type: error.name, message: error.message });
    }
    const bad = await failFastOnBadInput(async () => checkId('run id', 'my run id')).catch(
      (caught: unknown) => caught,
    );
    expect(bad).toMatchObject({ nonRetryable: true, type: 'InvalidBlobIdError' });
    const csv = await failFastOnBadInput(async () => detectDatasetFormat('rows.csv')).catch(
      (error: unknown) => error,
    );
    expect(csv).toMatchObject({
      nonRetryable: true,
      type: 'DatasetFormatError',
      message: expect.stringContaining('rows.csv'),
    });
  });

  it('fails a fault in the code at once where asked (the batch activities), and leaves it to retries elsewhere', async () => {
    const fault = async (): Promise<never> => {
      const parser: unknown = undefined;
      return (parser as () => never)();
    };
    const failure = await failFastOnBadInput(fault, { programmingErrors: true }).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({
      nonRetryable: true,
      type: 'TypeError',
      message: expect.stringMatching(/^internal error, not retried .*: TypeError: parser is not a function$/),
    });
    await expect(failFastOnBadInput(fault)).rejects.toBeInstanceOf(TypeError);
    const transient = new BlobStoreUnavailableError('down');
    await expect(
      failFastOnBadInput(async () => Promise.reject(transient), { programmingErrors: true }),
    ).rejects.toBe(transient);
  });

  it('lets errors a retry can fix through unchanged', async () => {
    const transient = new BlobStoreUnavailableError('down');
    await expect(failFastOnBadInput(async () => Promise.reject(transient))).rejects.toBe(transient);
  });
});
