/** A scheduled training run gets a run id of its own per firing, valid as a blob-store id. */
import { checkId } from '../../../lib/storage';
import { firingRunId } from '../../../workflows/training';

it('appends the start time to the run id, to the second, in UTC', () => {
  const id = firingRunId('nightly', new Date('2026-11-23T03:00:07.123Z'));
  expect(id).toBe('nightly.20261123-030007');
  expect(checkId('training run id', id)).toBe(id);
  expect(firingRunId('nightly', new Date('2026-11-24T03:00:07Z'))).not.toBe(id);
});
