/**
 * The graph input and output names of a decoder exported with past key values, as Hugging Face optimum
 * exports Qwen2: the runtime feeds and fetches them, the project's builder writes them and the trainer's graph
 * takes the same inputs. One spelling, so a model the builder writes is one the runtime can run.
 *
 *   inputs   input_ids, attention_mask, position_ids, past_key_values.{layer}.key|value
 *   outputs  logits, present.{layer}.key|value
 */
export type KvPart = 'key' | 'value';

export const KV_PARTS: readonly KvPart[] = ['key', 'value'];

const past = (layer: number, part: KvPart): string => `past_key_values.${layer}.${part}`;
const present = (layer: number, part: KvPart): string => `present.${layer}.${part}`;

export const DECODER_NAMES = {
  inputIds: 'input_ids',
  attentionMask: 'attention_mask',
  positionIds: 'position_ids',
  logits: 'logits',
  past,
  present,
  pastKey: (layer: number) => past(layer, 'key'),
  pastValue: (layer: number) => past(layer, 'value'),
  presentKey: (layer: number) => present(layer, 'key'),
  presentValue: (layer: number) => present(layer, 'value'),
} as const;
