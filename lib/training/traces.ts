/**
 * Supervised traces: turns the agent should have produced, as training sequences for the supervised mode
 * (warm starts). A turn is the chat prompt the agent sees (built by lib/agent's prompt builders, encoded with
 * the policy's chat template exactly as generation encodes it) and the response to learn, ended by EOS.
 */
import type { PolicyTokenizer } from '../model/tokenizer';
import type { TrainingSequence } from './batch';

export interface TraceTurn {
  /** The user message (a memory-step or final prompt). */
  prompt: string;
  /** What the agent should answer. */
  response: string;
}

/** One supervised sequence: prompt ids as generation would see them, the response's ids and EOS as targets. */
export function traceSequence(
  tokenizer: Pick<PolicyTokenizer, 'encodeChat' | 'encodePlain'>,
  turn: TraceTurn,
  eosTokenId: number,
  where: Pick<TrainingSequence, 'group' | 'rollout' | 'turn'>,
): TrainingSequence {
  return {
    promptIds: tokenizer.encodeChat([{ role: 'user', content: turn.prompt }]),
    responseIds: [...tokenizer.encodePlain(turn.response), eosTokenId],
    samplingLogProbs: [],
    advantage: 0,
    ...where,
  };
}
