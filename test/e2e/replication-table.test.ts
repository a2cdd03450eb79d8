/**
 * The replication table is what the committed spec, models and scores give: `rememr1 replication --check`
 * recomputes each run's key (benchmark, settings, the committed weights' digest), fails on any score that is
 * missing or stale, and writes the same table.md as the committed one. It evaluates nothing, so it runs in seconds.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { projectRoot } from '../../temporal.config';
import { ownStderr, runRememr1 } from '../support/cli';

const committed = path.join(projectRoot, 'docs', 'replication');

describe('rememr1 replication', () => {
  let out: string;
  beforeAll(() => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'rememr1-replication-'));
    // The training curves are read beside the spec; the scores are reused from the output folder.
    fs.cpSync(path.join(committed, 'results'), path.join(out, 'results'), { recursive: true });
  });
  afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

  it('writes the committed table from the committed models and scores, evaluating nothing', async () => {
    const run = await runRememr1(['replication', '--check', '--out', out], {
      env: { ...process.env, CI: 'true' },
      timeoutMs: 120_000,
    });
    expect(ownStderr(run)).toBe('');
    expect(run.code).toBe(0);
    for (const file of ['table.md', 'training.svg'])
      expect(fs.readFileSync(path.join(out, file), 'utf8')).toBe(
        fs.readFileSync(path.join(committed, file), 'utf8'),
      );
  });

  it('names a stale score in one line instead of evaluating it', async () => {
    const file = path.join(out, 'results', 'rule-forward.seed1.json');
    const kept = JSON.parse(fs.readFileSync(file, 'utf8')) as { key: string };
    fs.writeFileSync(file, JSON.stringify({ ...kept, key: 'stale' }));
    const run = await runRememr1(['replication', '--check', '--out', out, '--only', 'rule-forward'], {
      env: { ...process.env, CI: 'true' },
      timeoutMs: 120_000,
    });
    expect(run.code).toBe(1);
    expect(ownStderr(run)).toMatch(
      /^rememr1: rule-forward, seed 1: .*rule-forward\.seed1\.json is stale \(the spec, the settings or the model changed\); run without --check to evaluate it$/,
    );
  });
});
