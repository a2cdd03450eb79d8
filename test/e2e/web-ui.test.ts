/**
 * The Temporal Web UI as a person uses it, in a real headless Chromium: a dev server of the test's own with the UI
 * on, a batch found through the list's search-attribute filter, its Current Details while episodes run (they
 * wait for an inference worker that starts only afterwards, so "running" holds still while it is read), a running
 * episode's Current Details, then a finished episode opened from the list: its question in the Result and its final
 * progress in Current Details; with payload encryption on, an episode's question shown decrypted by a UI given the
 * codec server while its history holds no plaintext. Screenshots are kept in test-artifacts/web-ui/ (REMEMR1_TEST_ARTIFACTS moves it).
 *
 * In CI (CI=true, set by .ci/run) a missing Chromium or playwright-core fails the test; elsewhere it is skipped
 * with the reason printed.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { AesGcmCodec, loadKeyring } from '../../lib/temporal/codec';
import { startCodecServer } from '../../lib/temporal/codec-server';
import { episodeProgressQuery, type episodeWorkflow } from '../../workflows/episode';
import { batchProgressQuery, type BatchProgress } from '../../workflows/batch';
import { startSyntheticBatch } from '../support/batch';
import { WorkerRig } from '../support/rig';
import {
  connectTestClient,
  eventually,
  freePortPair,
  requireStackEnvironment,
  tempDir,
  testConfig,
} from '../support/stack';
import {
  artifactDir,
  browserPrerequisites,
  currentDetailsShow,
  inCI,
  launchBrowser,
  openFromList,
  payloadsShow,
  screenshot,
  startUiServer,
  type UiServer,
} from '../support/web-ui';

const prerequisites = browserPrerequisites();
const runsHere = prerequisites.ok || inCI();
if (!runsHere && !prerequisites.ok)
  console.log(`[web-ui] browser test skipped (not in CI): ${prerequisites.reason}`);

(runsHere ? describe : describe.skip)('the Temporal Web UI in a real browser', () => {
  requireStackEnvironment();
  const artifacts = artifactDir('web-ui');
  let server: UiServer | undefined;
  let orchestration: WorkerRig | undefined;
  let inference: WorkerRig | undefined;
  let browser: Browser | undefined;
  let page: Page;

  beforeAll(async () => {
    if (!prerequisites.ok) throw new Error(`the browser test must run in CI, but ${prerequisites.reason}`);
    server = await startUiServer('web-ui');
    browser = await launchBrowser(prerequisites.playwright, prerequisites.chromium);
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  }, 180_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await inference?.close();
    await orchestration?.close();
    await server?.stop();
  }, 120_000);

  it('finds a batch by search attribute, shows its progress while episodes run, then an episode’s final progress', async () => {
    const config = testConfig('web-ui', { address: server!.address });
    // Orchestration only at first: episodes start and wait for their first model step.
    orchestration = await WorkerRig.start(config, 'orchestration');
    const runId = `web-ui-${Date.now().toString(36)}`;
    const handle = await startSyntheticBatch(orchestration.client, config, orchestration.store, runId, {
      seed: 21,
      questions: 2,
    });
    const running = await eventually<BatchProgress>(
      'episodes running',
      async () => {
        const progress = await handle.query(batchProgressQuery);
        return progress.running === 2 ? progress : undefined;
      },
      120_000,
    );

    await openFromList(page, server!, `RememRunId = '${runId}' AND RememKind = 'batch'`, handle.workflowId, {
      dir: artifacts,
      step: '1-batch-in-list',
    });
    const batchDetails = await currentDetailsShow(
      page,
      `${running.done} of ${running.validRows} episodes done, ${running.running} running, ${running.failed} failed`,
    );
    await screenshot(page, artifacts, '2-batch-running');
    expect(batchDetails).toContain('2 running');

    // A running episode, found by its status search attribute: its details say what it is doing.
    const waiting = `${runId}.row-000000001`;
    await openFromList(
      page,
      server!,
      `RememRunId = '${runId}' AND RememKind = 'episode' AND RememStatus = 'preparing'`,
      waiting,
      {
        dir: artifacts,
        step: '3-running-episodes-in-list',
      },
    );
    await currentDetailsShow(page, 'splitting the document into chunks');
    await screenshot(page, artifacts, '4-running-episode');

    inference = await WorkerRig.start(config, 'inference');
    const summary = await handle.result();
    expect(summary.overall.episodes).toBe(2);

    const episodeId = `${runId}.row-000000000`;
    const episodeHandle = orchestration.client.workflow.getHandle<typeof episodeWorkflow>(episodeId);
    const episode = await episodeHandle.query(episodeProgressQuery);
    expect(episode.status).toBe('done');
    const { question } = await episodeHandle.result();
    await openFromList(
      page,
      server!,
      `RememRunId = '${runId}' AND RememKind = 'episode' AND RememStatus = 'done'`,
      episodeId,
      {
        dir: artifacts,
        step: '5-episodes-in-list',
      },
    );
    // The episode's result carries its question: what the codec-server test will look for through the codec.
    await payloadsShow(page, question);
    await screenshot(page, artifacts, '6-episode-result');
    // Across the bold "Chunk N of N" and the text after it, so that the whole line is what matched.
    const episodeDetails = await currentDetailsShow(
      page,
      `Chunk ${episode.chunksTotal} of ${episode.chunksTotal} (${episode.documentTokens} document tokens`,
    );
    await screenshot(page, artifacts, '7-episode-current-details');
    expect(episodeDetails).toContain(`${episode.recallQueries} callback queries so far`);
    console.log(`[web-ui] screenshots in ${artifacts}`);
  }, 600_000);

  it('shows an encrypted episode’s question decrypted through the codec server, and only through it', async () => {
    // Payload encryption on for the workers and the client; a second dev server whose UI knows the codec server.
    const keysFile = path.join(tempDir('web-ui-keys'), 'keys');
    fs.writeFileSync(keysFile, `ui-${Date.now().toString(36)}:${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const keyring = loadKeyring({ keysFile })!;
    const port = await freePortPair();
    const codecServer = await startCodecServer({
      codec: new AesGcmCodec(keyring),
      port: 0,
      allowedOrigins: [`http://127.0.0.1:${port + 1}`],
    });
    const encryptedServer = await startUiServer('web-ui-codec', { port, codecEndpoint: codecServer.url });
    const config = { ...testConfig('web-ui-codec', { address: encryptedServer.address }), encryption: { keysFile } };
    const rig = await WorkerRig.start(config);
    try {
      const runId = `web-ui-codec-${Date.now().toString(36)}`;
      const handle = await startSyntheticBatch(rig.client, config, rig.store, runId, { seed: 22, questions: 1 });
      await handle.result();
      const episodeId = `${runId}.row-000000000`;
      const { question } = await rig.client.workflow.getHandle<typeof episodeWorkflow>(episodeId).result();
      // The history holds no plaintext question (read without the codec)…
      const raw = await connectTestClient(config, { raw: true });
      try {
        const history = await raw.workflow.getHandle(episodeId).fetchHistory();
        expect(JSON.stringify(history).includes(question)).toBe(false);
      } finally {
        await raw.connection.close();
      }
      // …while the UI, given the codec server, shows it.
      await openFromList(page, encryptedServer, `RememRunId = '${runId}' AND RememKind = 'episode'`, episodeId, {
        dir: artifacts,
        step: '8-encrypted-episode-in-list',
      });
      await payloadsShow(page, question);
      await screenshot(page, artifacts, '9-encrypted-episode-decrypted');
    } finally {
      await rig.close();
      await encryptedServer.stop();
      await codecServer.close();
    }
  }, 600_000);
});
