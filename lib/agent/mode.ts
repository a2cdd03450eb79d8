import { AgentInputError } from './errors';

/**
 * How the agent runs.
 * - `rememr1`: tagged turns (`<thinking>`, `<update>`, optional `<recall>`) and callback retrieval.
 * - `memagent`: the MemAgent baseline: no callback and no recalled memory; the whole response becomes the memory.
 */
export const AGENT_MODES = ['rememr1', 'memagent'] as const;

export type AgentMode = (typeof AGENT_MODES)[number];

/** Throws an {@link AgentInputError} unless `mode` is one of {@link AGENT_MODES} (for values read from config). */
export function assertAgentMode(mode: unknown): asserts mode is AgentMode {
  if (!AGENT_MODES.includes(mode as AgentMode)) {
    throw new AgentInputError(
      `unknown agent mode ${JSON.stringify(mode)}; expected ${AGENT_MODES.map((name) => `"${name}"`).join(' or ')}`,
    );
  }
}
