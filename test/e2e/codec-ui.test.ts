/**
 * The local dev server's Web UI is pointed at the codec server when asked (`stack:start --codec-endpoint`): a private
 * dev server (own port and state folder, stopped at the end) reports the endpoint in the UI's settings.
 */
import * as net from 'node:net';
import { startTemporal, stopTemporal, type StackPaths } from '../../infra/local-stack';
import { privateServerSlot } from '../support/rig';
import { requireStackEnvironment } from '../support/stack';

requireStackEnvironment();
jest.setTimeout(300_000);

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

let paths: StackPaths | undefined;

afterAll(async () => {
  if (paths) await stopTemporal(paths);
});

it('starts the Web UI with the codec endpoint it is given', async () => {
  let slot = await privateServerSlot('codec-ui');
  // The UI listens on the gRPC port + 1000.
  while (!(await isFree(Number(slot.address.split(':')[1]) + 1000))) slot = await privateServerSlot('codec-ui');
  paths = slot.paths;
  const port = Number(slot.address.split(':')[1]);
  const endpoint = 'http://127.0.0.1:18081';
  const handle = await startTemporal({ paths, address: slot.address, namespace: 'default', ui: true, uiCodecEndpoint: endpoint });
  expect(handle.started).toBe(true);
  const settings = (await (await fetch(`http://127.0.0.1:${port + 1000}/api/v1/settings`)).json()) as { Codec?: { Endpoint?: string } };
  expect(settings.Codec?.Endpoint).toBe(endpoint);
});
