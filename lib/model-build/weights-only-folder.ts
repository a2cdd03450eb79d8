/**
 * Weights-only model folders: config.json, the tokenizer files, generation_config.json and model.safetensors,
 * without onnx/. The ONNX graph holds the same weights again, so a folder committed only to be evaluated (the
 * replication's trained variants) keeps half its bytes by leaving it out; `completeModelFolder` rebuilds the
 * graph from the weights with the builder the trainer exports with, into a cache folder, before the runtime
 * loads it.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseModelConfig } from '../model/config';
import { ModelFolderError } from '../model/errors';
import { MODEL_FILES } from '../model/folder';
import { parseSafetensors } from '../model/safetensors';
import {
  buildWeightFiles,
  decoderSpecOf,
  SAFETENSORS_FILE,
  writeModelFolderFiles,
} from './model-folder-builder';
import { collectQwen2Weights } from './qwen2-weights';

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

async function readRequired(folder: string, name: string, why: string): Promise<Buffer> {
  const file = path.join(folder, name);
  try {
    return await fs.readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new ModelFolderError(file, `is missing; ${why}`);
    throw error;
  }
}

/**
 * `folder` itself when it has its ONNX graph; otherwise a complete copy under `cacheRoot`, named by the digest
 * of the folder's files (weights, config, tokenizer: a change to any of them is another copy) and built once
 * (an interrupted build leaves no folder that looks complete).
 */
export async function completeModelFolder(folder: string, cacheRoot: string): Promise<string> {
  if (await exists(path.join(folder, MODEL_FILES.onnx))) return folder;
  const why = 'a weights-only model folder needs config.json and model.safetensors to rebuild its ONNX graph';
  const weightsBytes = await readRequired(folder, SAFETENSORS_FILE, why);
  const digest = createHash('sha256');
  for (const name of (await fs.readdir(folder, { withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => entry.name)
    .sort())
    digest
      .update(`${name}\n`)
      .update(name === SAFETENSORS_FILE ? weightsBytes : await fs.readFile(path.join(folder, name)));
  const target = path.join(cacheRoot, digest.digest('hex').slice(0, 24));
  if (await exists(path.join(target, MODEL_FILES.onnx))) return target;

  const configFile = path.join(folder, MODEL_FILES.config);
  let config;
  try {
    config = parseModelConfig(
      JSON.parse((await readRequired(folder, MODEL_FILES.config, why)).toString('utf8')),
    );
  } catch (error) {
    if (error instanceof ModelFolderError) throw error;
    throw new ModelFolderError(
      configFile,
      `is not a usable model config: ${(error as Error).message.split('\n')[0]}`,
    );
  }
  const spec = decoderSpecOf(config);
  const weights = collectQwen2Weights(
    spec,
    parseSafetensors(weightsBytes, path.join(folder, SAFETENSORS_FILE)),
    path.join(folder, SAFETENSORS_FILE),
  );
  const graphFiles = buildWeightFiles(spec, weights).filter((file) => file.path !== SAFETENSORS_FILE);

  const staging = `${target}.partial-${process.pid}`;
  await fs.rm(staging, { recursive: true, force: true });
  await fs.cp(folder, staging, { recursive: true });
  await writeModelFolderFiles(staging, graphFiles);
  await fs.rm(target, { recursive: true, force: true });
  await fs.rename(staging, target);
  return target;
}
