/**
 * Errors raised by the agent core on bad input. Every one names what was wrong and what was expected,
 * so a caller (a workflow, the CLI) can show the message to a user as it is.
 */

/** Base class: the input given to an agent-core function was not acceptable. */
export class AgentInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A prompt template is malformed or lacks placeholders its kind of prompt needs. */
export class PromptTemplateError extends AgentInputError {
  /** Every problem found, one sentence each (the message lists them too). */
  readonly problems: readonly string[];

  constructor(context: string, problems: readonly string[]) {
    super(`${context}:\n- ${problems.join('\n- ')}`);
    this.problems = problems;
  }
}

/** The values passed to a prompt builder or a turn renderer cannot be used. */
export class PromptInputError extends AgentInputError {}

/** A memory history operation was given an invalid step, text or serialised state. */
export class MemoryHistoryError extends AgentInputError {}

/** Retrieval options are out of range. */
export class RetrievalOptionsError extends AgentInputError {}

/** A metric or reward was called with unusable gold answers or values. */
export class MetricInputError extends AgentInputError {}

/** Advantage computation was given empty groups, non-finite rewards or options out of range. */
export class AdvantageInputError extends AgentInputError {}
