import { AgentInputError } from './errors';

/**
 * How the agent runs.
 * - `rememr1`: tagged turns (`<thinking>`, `<update>`, optional `<recall>`) and callback retrieval.
 * - `memagent`: the MemAgent baseline: no callback and no recalled memory; the whole response becomes the memory.
 */
export type AgentMode = 'rememr1' | 'memagent';

export const AGENT_MODES: readonly AgentMode[] = ['rememr1', 'memagent'];

/** Throws an {@link AgentInputError} unless `mode` is one of {@link AGENT_MODES} (for values read from config). */
export function assertAgentMode(mode: unknown): asserts mode is AgentMode {
  if (mode !== 'rememr1' && mode !== 'memagent') {
    throw new AgentInputError(`unknown agent mode ${JSON.stringify(mode)}; expected "rememr1" or "memagent"`);
  }
}
