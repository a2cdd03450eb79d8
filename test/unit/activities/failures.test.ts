import { ApplicationFailure } from '@temporalio/common';
import { failFastOnBadInput, isBadInput } from '../../../activities/failures';
import { PromptTemplateError } from '../../../lib/agent';
import { DatasetFormatError, detectDatasetFormat } from '../../../lib/data/dataset';
import { EpisodeInputError } from '../../../lib/episode/steps';
import { ModelFolderError } from '../../../lib/model/errors';
import { BlobNotFoundError, BlobStoreUnavailableError } from '../../../lib/storage';

describe('activity failures', () => {
  it('tells bad input from trouble that a retry can fix', () => {
    expect(isBadInput(new EpisodeInputError('empty document'))).toBe(true);
    expect(isBadInput(new DatasetFormatError('not parquet'))).toBe(true);
    expect(isBadInput(new PromptTemplateError('bad template', []))).toBe(true);
    expect(isBadInput(new ModelFolderError('config.json', 'missing'))).toBe(true);
    expect(isBadInput(new BlobNotFoundError('runs/a/input.json', 'store'))).toBe(true);
    expect(isBadInput(new BlobStoreUnavailableError('connection refused'))).toBe(false);
    expect(isBadInput(new Error('socket hang up'))).toBe(false);
  });

  it('turns bad input into a non-retryable failure with the original message, and lets the rest through', async () => {
    const failure = await failFastOnBadInput(async () => detectDatasetFormat('rows.csv')).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ nonRetryable: true, type: 'DatasetFormatError', message: expect.stringContaining('rows.csv') });
    const transient = new BlobStoreUnavailableError('down');
    await expect(failFastOnBadInput(async () => Promise.reject(transient))).rejects.toBe(transient);
  });
});
