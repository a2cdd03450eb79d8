/**
 * With encryption on, failure messages and stack traces travel as an encoded payload (so the codec encrypts them)
 * instead of plain fields of the history: an error that quotes a document must not leak it. Loaded by path
 * (`failureConverterPath`) by clients, workers and the workflow bundle; pure, so safe in workflow code.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
