/** config.json and generation_config.json parsing. */
import {
  ConfigSchemaError,
  modelConfigToJson,
  parseGenerationConfig,
  parseModelConfig,
} from '../../../lib/model/config';

/** Qwen2.5-0.5B-Instruct's config.json. */
const QWEN25_05B = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  hidden_act: 'silu',
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.43.1',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

describe('model config', () => {
  it("reads Qwen2.5's config", () => {
    const config = parseModelConfig(QWEN25_05B);
    expect(config).toMatchObject({
      vocabSize: 151936,
      hiddenSize: 896,
      numHiddenLayers: 24,
      numAttentionHeads: 14,
      numKeyValueHeads: 2,
      headDim: 64,
      tieWordEmbeddings: true,
      eosTokenIds: [151645],
      ropeTheta: 1e6,
    });
    expect(config.raw.max_window_layers).toBe(21);
  });

  it('fills Hugging Face defaults for omitted fields', () => {
    const config = parseModelConfig({
      vocab_size: 10,
      hidden_size: 8,
      intermediate_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
    });
    expect(config).toMatchObject({
      numKeyValueHeads: 2,
      headDim: 4,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      tieWordEmbeddings: false,
      eosTokenIds: [],
      bosTokenId: null,
    });
  });

  it('names every bad field', () => {
    expect(() => parseModelConfig({ ...QWEN25_05B, hidden_size: -1, num_hidden_layers: 'many' })).toThrow(
      ConfigSchemaError,
    );
    expect(() => parseModelConfig({ ...QWEN25_05B, hidden_size: -1, num_hidden_layers: 'many' })).toThrow(
      /hidden_size: .*num_hidden_layers: /,
    );
    expect(() => parseModelConfig({ ...QWEN25_05B, num_key_value_heads: 4 })).toThrow(
      /num_attention_heads \(14\) must be a multiple of num_key_value_heads \(4\)/,
    );
  });

  it('writes configs that read back the same', () => {
    const config = parseModelConfig(QWEN25_05B);
    const again = parseModelConfig(modelConfigToJson(config));
    const { raw: _raw, ...shape } = config;
    const { raw: _again, ...shapeAgain } = again;
    expect(shapeAgain).toEqual(shape);
  });

  it('reads generation configs with one or several EOS ids', () => {
    expect(
      parseGenerationConfig({ eos_token_id: [151645, 151643], pad_token_id: 151643, top_p: 0.8 }).eosTokenIds,
    ).toEqual([151645, 151643]);
    expect(parseGenerationConfig({ eos_token_id: 2 }).eosTokenIds).toEqual([2]);
    expect(() => parseGenerationConfig({ top_p: 3 })).toThrow(/top_p/);
  });
});
