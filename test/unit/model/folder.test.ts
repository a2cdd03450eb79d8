/**
 * Every bad model folder gives one clear error naming the file and what was expected.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ModelFolderError } from '../../../lib/model/errors';
import { loadModelFolder } from '../../../lib/model/folder';
import { loadPolicy } from '../../../lib/model/policy';
import { decodeModel, encodeModel, DataType, type onnx } from '../../../lib/model/onnx-graph';
import { smallModelFolder, smallTokenizer, temporaryFolder } from './helpers';

let valid: string;

beforeAll(async () => {
  valid = await smallModelFolder('folder-valid');
});

/** A copy of the valid folder, changed by `change`. */
async function variant(change: (folder: string) => Promise<void>): Promise<string> {
  const folder = await temporaryFolder('folder-bad');
  await fs.cp(valid, folder, { recursive: true });
  await change(folder);
  return folder;
}

async function editOnnx(folder: string, edit: (graph: onnx.IGraphProto) => void): Promise<void> {
  const file = path.join(folder, 'onnx', 'model.onnx');
  const model = decodeModel(await fs.readFile(file));
  edit(model.graph as onnx.IGraphProto);
  await fs.writeFile(file, encodeModel(model));
}

async function editJson(
  folder: string,
  name: string,
  edit: (json: Record<string, unknown>) => void,
): Promise<void> {
  const file = path.join(folder, name);
  const json = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
  edit(json);
  await fs.writeFile(file, JSON.stringify(json));
}

function declared(graph: onnx.IGraphProto, kind: 'input' | 'output', name: string): onnx.IValueInfoProto {
  const info = (graph[kind] ?? []).find((entry) => entry.name === name);
  if (info === undefined) throw new Error(`test setup: no ${kind} ${name}`);
  return info;
}

async function expectFolderError(folder: string, file: string, ...fragments: RegExp[]): Promise<void> {
  const error = await loadModelFolder(folder).then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ModelFolderError);
  const { file: blamed, message } = error as ModelFolderError;
  expect(path.relative(folder, blamed)).toBe(file);
  for (const fragment of fragments) expect(message).toMatch(fragment);
}

describe('model folder checks', () => {
  it('accepts the valid folder', async () => {
    const folder = await loadModelFolder(valid);
    expect(folder.config.numHiddenLayers).toBe(2);
    expect(folder.eosTokenIds).toHaveLength(2);
  });

  it('a path that is not a folder', async () => {
    const missing = path.join(valid, 'nothing-here');
    await expect(loadModelFolder(missing)).rejects.toThrow(/is not a directory; expected a model folder/);
  });

  it.each([
    ['config.json'],
    ['tokenizer.json'],
    ['tokenizer_config.json'],
    [path.join('onnx', 'model.onnx')],
  ])('a missing %s', async (file) => {
    await expectFolderError(
      await variant((folder) => fs.rm(path.join(folder, file))),
      file,
      /missing; expected/,
    );
  });

  it('config.json that is not JSON', async () => {
    await expectFolderError(
      await variant((folder) => fs.writeFile(path.join(folder, 'config.json'), '{"vocab_size": 3,')),
      'config.json',
      /not valid JSON/,
    );
  });

  it('config.json outside the Qwen2 schema', async () => {
    const folder = await variant((f) =>
      editJson(f, 'config.json', (json) => {
        json.num_attention_heads = 'four';
        delete json.hidden_size;
      }),
    );
    await expectFolderError(
      folder,
      'config.json',
      /Qwen2 config schema/,
      /num_attention_heads/,
      /hidden_size/,
    );
  });

  it('config.json whose heads do not divide into key/value heads', async () => {
    await expectFolderError(
      await variant((f) => editJson(f, 'config.json', (json) => (json.num_key_value_heads = 3))),
      'config.json',
      /multiple of num_key_value_heads/,
    );
  });

  it('tokenizer.json that is not JSON', async () => {
    await expectFolderError(
      await variant((f) => fs.writeFile(path.join(f, 'tokenizer.json'), 'not json')),
      'tokenizer.json',
      /not valid JSON/,
    );
  });

  it('tokenizer.json that is not a tokenizer', async () => {
    await expectFolderError(
      await variant((f) => editJson(f, 'tokenizer.json', (json) => (json.model = { type: 'NoSuchModel' }))),
      'tokenizer.json',
      /cannot be loaded as a Hugging Face tokenizer/,
    );
  });

  it('a tokenizer with more ids than the model has', async () => {
    const bigger = smallTokenizer(420);
    expect(bigger.vocabularySize).toBeGreaterThan(384);
    const folder = await variant((f) =>
      fs.writeFile(path.join(f, 'tokenizer.json'), JSON.stringify(bigger.tokenizerJson)),
    );
    await expectFolderError(
      folder,
      'tokenizer.json',
      new RegExp(`ids up to ${bigger.vocabularySize - 1} `),
      /vocab_size = 384/,
    );
  });

  it('generation_config.json with a bad field', async () => {
    const folder = await variant((f) =>
      editJson(f, 'generation_config.json', (json) => (json.eos_token_id = 'end')),
    );
    await expectFolderError(folder, 'generation_config.json', /generation config schema/, /eos_token_id/);
  });

  it('onnx/model.onnx that is corrupt', async () => {
    const folder = await variant(async (f) => {
      const file = path.join(f, 'onnx', 'model.onnx');
      const bytes = await fs.readFile(file);
      await fs.writeFile(
        file,
        Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]), bytes.subarray(0, 1000)]),
      );
    });
    await expectFolderError(folder, path.join('onnx', 'model.onnx'), /not a valid ONNX model/);
  });

  it('onnx/model.onnx that is not ONNX at all', async () => {
    const folder = await variant((f) =>
      fs.writeFile(path.join(f, 'onnx', 'model.onnx'), 'hello, I am a text file\n'),
    );
    await expectFolderError(folder, path.join('onnx', 'model.onnx'), /not a valid ONNX model/);
  });

  it('a graph input with a wrong name', async () => {
    const folder = await variant((f) =>
      editOnnx(f, (graph) => (declared(graph, 'input', 'position_ids').name = 'positions')),
    );
    await expectFolderError(
      folder,
      path.join('onnx', 'model.onnx'),
      /graph input "position_ids" is missing/,
      /\[batch, sequence\] int64/,
    );
  });

  it('a graph without the past key values of a layer', async () => {
    const folder = await variant((f) =>
      editOnnx(
        f,
        (graph) =>
          (graph.input = (graph.input ?? []).filter((input) => input.name !== 'past_key_values.1.value')),
      ),
    );
    await expectFolderError(
      folder,
      path.join('onnx', 'model.onnx'),
      /"past_key_values.1.value" is missing/,
      /2 layers/,
    );
  });

  it('a graph input the runtime cannot feed', async () => {
    const folder = await variant((f) =>
      editOnnx(f, (graph) =>
        graph.input?.push({ ...declared(graph, 'input', 'attention_mask'), name: 'use_cache_branch' }),
      ),
    );
    await expectFolderError(
      folder,
      path.join('onnx', 'model.onnx'),
      /"use_cache_branch" is not one the runtime can feed/,
    );
  });

  it('a graph input with a wrong element type', async () => {
    const folder = await variant((f) =>
      editOnnx(
        f,
        (graph) => (declared(graph, 'input', 'input_ids').type!.tensorType!.elemType = DataType.INT32),
      ),
    );
    await expectFolderError(
      folder,
      path.join('onnx', 'model.onnx'),
      /"input_ids" is int32; expected \[batch, sequence\] int64/,
    );
  });

  it('past key values whose key/value head count disagrees with config.json', async () => {
    const folder = await variant((f) =>
      editOnnx(
        f,
        (graph) =>
          (declared(graph, 'input', 'past_key_values.0.key').type!.tensorType!.shape!.dim![1] = {
            dimValue: 4,
          }),
      ),
    );
    await expectFolderError(
      folder,
      path.join('onnx', 'model.onnx'),
      /"past_key_values.0.key" has shape \[batch_size, 4, past_sequence_length, 8\]/,
      /2 \(num_key_value_heads\)/,
    );
  });

  it('present key values with a wrong rank', async () => {
    const folder = await variant((f) =>
      editOnnx(f, (graph) => declared(graph, 'output', 'present.1.key').type!.tensorType!.shape!.dim!.pop()),
    );
    await expectFolderError(
      folder,
      path.join('onnx', 'model.onnx'),
      /graph output "present.1.key" has shape/,
      /8 \(head_dim\)/,
    );
  });

  it('logits whose vocabulary disagrees with config.json', async () => {
    const folder = await variant((f) => editJson(f, 'config.json', (json) => (json.vocab_size = 512)));
    await expectFolderError(
      folder,
      path.join('onnx', 'model.onnx'),
      /graph output "logits" has shape \[batch_size, sequence_length, 384\]/,
      /512 \(vocab_size\)/,
    );
  });

  it('a config.json with more layers than the graph', async () => {
    const folder = await variant((f) => editJson(f, 'config.json', (json) => (json.num_hidden_layers = 3)));
    await expectFolderError(
      folder,
      path.join('onnx', 'model.onnx'),
      /"past_key_values.2.key" is missing/,
      /3 layers/,
    );
  });

  describe('external weights', () => {
    let external: string;
    beforeAll(async () => {
      external = await smallModelFolder('folder-external', { externalData: true });
    });

    it('loads and serves a folder whose weights are in onnx/model.onnx_data', async () => {
      const policy = await loadPolicy(external);
      const result = await policy.generate({
        prompt: 'The capital',
        maxNewTokens: 3,
        temperature: 0,
        seed: 1,
      });
      expect(result.tokenIds).toHaveLength(3);
      await policy.dispose();
    });

    it('a missing external data file', async () => {
      const folder = await temporaryFolder('folder-bad');
      await fs.cp(external, folder, { recursive: true });
      await fs.rm(path.join(folder, 'onnx', 'model.onnx_data'));
      await expectFolderError(
        folder,
        path.join('onnx', 'model.onnx_data'),
        /missing; model.onnx keeps its weights in this external data file/,
      );
    });

    it('a truncated external data file', async () => {
      const folder = await temporaryFolder('folder-bad');
      await fs.cp(external, folder, { recursive: true });
      await fs.truncate(path.join(folder, 'onnx', 'model.onnx_data'), 1000);
      await expectFolderError(
        folder,
        path.join('onnx', 'model.onnx_data'),
        /is 1000 bytes but model.onnx reads weights up to byte \d+/,
      );
    });
  });
});
