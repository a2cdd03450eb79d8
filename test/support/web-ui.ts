/**
 * The Temporal Web UI in a real headless browser: a private dev server with its UI on, Debian's Chromium driven
 * by `playwright-core` (plain `chromium --headless --screenshot` hangs on pages of running workflows), and the
 * steps a person takes in the UI. Screenshots go to the artefact folder, kept after the run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Frame, Locator, Page } from 'playwright-core';
import { findOnPath, isExecutable, waitUntil } from '../../infra/processes';
import { httpAnswers, stackPaths, startTemporal, stopTemporal, type StackPaths } from '../../infra/local-stack';
import { loadConfig } from '../../temporal.config';
import { freePortPair, tempDir, testNamespace } from './stack';

type Playwright = typeof import('playwright-core');

/** Where the browser tests keep their screenshots (git-ignored; REMEMR1_TEST_ARTIFACTS moves it). */
export function artifactDir(name: string): string {
  const root = process.env.REMEMR1_TEST_ARTIFACTS ?? path.join(__dirname, '..', '..', 'test-artifacts');
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Chromium: $CHROMIUM_PATH, else the first of Debian's and other distributions' names on PATH. */
export function findChromium(): string | undefined {
  const explicit = process.env.CHROMIUM_PATH;
  if (explicit) return isExecutable(explicit) ? explicit : undefined;
  for (const name of ['chromium', 'chromium-browser', 'google-chrome-stable', 'google-chrome']) {
    const found = findOnPath(name);
    if (found) return found;
  }
  return undefined;
}

export type BrowserPrerequisites =
  { ok: true; chromium: string; playwright: Playwright } | { ok: false; reason: string };

/**
 * What the browser test needs, or why it cannot run. CI installs both (`.ci/run` installs Chromium; the lockfile
 * has playwright-core), so there a missing one fails the test; elsewhere the test is skipped with the reason.
 */
export function browserPrerequisites(): BrowserPrerequisites {
  const chromium = findChromium();
  if (!chromium) {
    return {
      ok: false,
      reason:
        'no Chromium found (set CHROMIUM_PATH, or install it: apt-get install -y chromium; .ci/run does so in CI)',
    };
  }
  let playwright: Playwright;
  try {
    // A plain require, so that a machine without the package is told so instead of failing at import.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    playwright = require('playwright-core') as Playwright;
  } catch (error) {
    return {
      ok: false,
      reason: `playwright-core is not installed (npm install): ${(error as Error).message.split('\n')[0]}`,
    };
  }
  return { ok: true, chromium, playwright };
}

/** True when running in CI (`.ci/run` sets CI=true), where a browser test must run rather than skip. */
export function inCI(): boolean {
  return Boolean(process.env.CI) && process.env.CI !== 'false' && process.env.CI !== '0';
}

export interface UiServer {
  /** gRPC frontend, host:port. */
  address: string;
  /** The Web UI's base URL. */
  uiUrl: string;
  namespace: string;
  paths: StackPaths;
  stop(): Promise<void>;
}

/**
 * A dev server of the test's own with the Web UI on, on free loopback ports, in the tests' namespace; never the
 * user's server (which may be headless, or theirs to keep). `codecEndpoint` is handed to the UI as
 * `--ui-codec-endpoint`, so that with payload encryption on it shows decoded payloads through a codec server.
 */
export async function startUiServer(
  name: string,
  options: { codecEndpoint?: string; port?: number } = {},
): Promise<UiServer> {
  // A caller that must know the UI's origin first (a codec server admits it by origin) picks the port pair.
  const port = options.port ?? (await freePortPair());
  const uiPort = port + 1;
  // Its own state folder, but the project's installed tools (a temp folder would install the CLI again).
  const paths: StackPaths = {
    ...stackPaths(tempDir(`${name}-stack`)),
    tools: stackPaths(loadConfig().localDir).tools,
  };
  const address = `127.0.0.1:${port}`;
  const namespace = testNamespace();
  const uiUrl = `http://127.0.0.1:${uiPort}`;
  const stop = async (): Promise<void> => {
    await stopTemporal(paths);
  };
  try {
    await startTemporal({
      paths,
      address,
      namespace,
      ui: true,
      uiPort,
      uiCodecEndpoint: options.codecEndpoint,
    });
    await waitUntil(`Temporal Web UI at ${uiUrl}`, () => httpAnswers(uiUrl), 60_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { address, uiUrl, namespace, paths, stop };
}


/** Headless Chromium at a desktop size; `--no-sandbox` is playwright's default, needed when CI runs as root. */
export function launchBrowser(playwright: Playwright, chromium: string): Promise<Browser> {
  return playwright.chromium.launch({ executablePath: chromium, headless: true, timeout: 60_000 });
}

/** How long one UI step may take on a loaded two-core machine. */
export const UI_STEP_TIMEOUT_MS = 60_000;

/**
 * Opens the workflow list filtered by a visibility query (as typed in the UI's filter) and clicks `workflowId`'s
 * row. Visibility lags a little behind the server, so the list is reloaded until the row is there.
 */
export async function openFromList(
  page: Page,
  server: UiServer,
  query: string,
  workflowId: string,
  listShot?: { dir: string; step: string },
): Promise<void> {
  const url = `${server.uiUrl}/namespaces/${encodeURIComponent(server.namespace)}/workflows?query=${encodeURIComponent(query)}`;
  const link = page.getByRole('link', { name: workflowId, exact: true });
  await waitUntil(
    `${workflowId} in the UI's list for ${query}`,
    async () => {
      await page.goto(url, { timeout: UI_STEP_TIMEOUT_MS });
      await link.first().waitFor({ state: 'visible', timeout: 10_000 });
      return true;
    },
    UI_STEP_TIMEOUT_MS * 2,
  );
  if (listShot) await screenshot(page, listShot.dir, listShot.step);
  await link.first().click();
  await page.waitForURL(
    (target) => target.pathname.includes(`/workflows/${encodeURIComponent(workflowId)}`),
    { timeout: UI_STEP_TIMEOUT_MS },
  );
}

/**
 * Opens the "User Metadata" tab of the workflow page shown and waits until its Current Details panel shows
 * `expected` (the UI renders the details' Markdown in a sandboxed frame, so every frame is searched). The UI reads
 * the details by a query when the tab opens, so a page that still lacks them is reloaded now and then. Returns the
 * text that matched.
 */
export async function currentDetailsShow(page: Page, expected: string): Promise<string> {
  const openTab = async (): Promise<void> => {
    await page
      .getByRole('link', { name: 'User Metadata' })
      .or(page.getByRole('tab', { name: 'User Metadata' }))
      .first()
      .click({ timeout: UI_STEP_TIMEOUT_MS });
    await page
      .getByText('Current Details', { exact: true })
      .first()
      .waitFor({ state: 'visible', timeout: UI_STEP_TIMEOUT_MS });
  };
  await openTab();
  let found: string | undefined;
  let loadedAt = Date.now();
  await waitUntil(
    `"${expected}" in the UI's Current Details`,
    async () => {
      for (const frame of page.frames()) {
        found = await textIn(frame, expected);
        if (found !== undefined) return true;
      }
      if (Date.now() - loadedAt > 10_000) {
        await page.reload({ timeout: UI_STEP_TIMEOUT_MS });
        await openTab();
        loadedAt = Date.now();
      }
      return false;
    },
    UI_STEP_TIMEOUT_MS * 2,
  );
  return found ?? '';
}

/**
 * Waits until the workflow page shown has `expected` in its Input or Result (as the UI decoded them: with payload
 * encryption on, only a UI given the codec server's endpoint shows plaintext there).
 */
export async function payloadsShow(page: Page, expected: string): Promise<void> {
  await page.getByText(expected).first().waitFor({ state: 'visible', timeout: UI_STEP_TIMEOUT_MS });
}

async function textIn(frame: Frame, expected: string): Promise<string | undefined> {
  const match: Locator = frame.getByText(expected).first();
  if ((await match.count()) === 0 || !(await match.isVisible())) return undefined;
  return match.innerText();
}

/** A full-page screenshot into `dir`, named for the step. */
export async function screenshot(page: Page, dir: string, step: string): Promise<string> {
  const file = path.join(dir, `${step}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
