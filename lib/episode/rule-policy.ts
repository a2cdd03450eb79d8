/**
 * A `Policy` whose responses come from the rule-based agents (lib/agent/rule-agent.ts) instead of a model, so
 * the rule agents run through the real pipeline: the same episode steps, workflows, storage and scoring.
 *
 * Chosen by the model path: `rule:forward` (bounded memory, no callback) or `rule:callback` (the same plus
 * `<recall>` queries), optionally with the memory's word budget, `rule:callback:64`. Prompts are encoded with
 * a real tokenizer and chat template (the bundled model's unless another folder is given) exactly as
 * generation encodes them; the response's token ids are its plain encoding followed by EOS, every log-prob 0
 * (the rule is deterministic). `maxNewTokens` is honoured: a response longer than it is cut, as a model's would be.
 */
import * as path from 'node:path';
import { DEFAULT_RULE_MEMORY_WORDS, RuleAgentError, ruleAgentResponse, type RuleVariant } from '../agent/rule-agent';
import { loadModelFolder, loadPolicy, type GenerateRequest, type GenerateResult, type Policy, type PolicyOptions, type PolicyStats } from '../model';
import { prepareRequest } from '../model/generate';

export interface RulePolicySpec {
  variant: RuleVariant;
  memoryWords: number;
}

/** The bundled model folder: its tokenizer and chat template encode the rule policy's prompts by default. */
export const BUNDLED_MODEL_FOLDER = path.join(__dirname, '..', '..', 'models', 'rememr1-tiny');

const RULE_PATH = /^rule:(forward|callback)(?::(\d+))?$/;

/** The rule policy a model path names, null for a model folder path; a malformed `rule:` path is an error. */
export function parseRulePolicyPath(modelPath: string): RulePolicySpec | null {
  if (!modelPath.startsWith('rule:')) return null;
  const match = RULE_PATH.exec(modelPath);
  if (match === null || (match[2] !== undefined && Number(match[2]) < 1)) {
    throw new RuleAgentError(`model path "${modelPath}" is not a rule policy: expected rule:forward or rule:callback, optionally with a memory word budget (rule:callback:48)`);
  }
  return { variant: match[1] as RuleVariant, memoryWords: match[2] === undefined ? DEFAULT_RULE_MEMORY_WORDS : Number(match[2]) };
}

/** The user message a rule policy answers: the last user message of a chat prompt. */
function userMessage(request: GenerateRequest): string {
  if (typeof request.prompt === 'string') throw new RuleAgentError('a rule policy reads chat prompts only (a list of messages), not raw text');
  const last = [...request.prompt].reverse().find((message) => message.role === 'user');
  if (last === undefined) throw new RuleAgentError('a rule policy needs a user message in the prompt');
  return last.content;
}

/** A rule policy over the tokenizer, chat template and EOS ids of `tokenizerFolder`. */
export async function loadRulePolicy(spec: RulePolicySpec, tokenizerFolder: string = BUNDLED_MODEL_FOLDER): Promise<Policy> {
  const folder = await loadModelFolder(tokenizerFolder);
  const { tokenizer, config } = folder;
  const eos = folder.eosTokenIds[0];
  if (eos === undefined) throw new RuleAgentError(`${tokenizerFolder} defines no EOS token, which a rule policy's responses end with`);
  let completed = 0;
  let disposed = false;
  return {
    folder: `rule:${spec.variant}:${spec.memoryWords}`,
    config,
    tokenizer,
    eosTokenIds: [...folder.eosTokenIds],
    async generate(request: GenerateRequest): Promise<GenerateResult> {
      if (disposed) throw new RuleAgentError('this rule policy has been disposed');
      const prepared = prepareRequest(request, tokenizer, config.maxPositionEmbeddings);
      let text = ruleAgentResponse(userMessage(request), spec);
      let finishReason: GenerateResult['finishReason'] = 'eos';
      let stopString: string | undefined;
      let tokenIds: number[];
      const stops = prepared.stop.map((stop) => ({ stop, at: text.indexOf(stop) })).filter((entry) => entry.at >= 0);
      if (stops.length > 0) {
        // Generation ends at the first stop string written; the text stops before it, the ids include it.
        const first = stops.reduce((best, entry) => (entry.at < best.at ? entry : best));
        text = text.slice(0, first.at);
        finishReason = 'stop';
        stopString = first.stop;
        tokenIds = tokenizer.encodePlain(text + first.stop);
      } else {
        tokenIds = [...tokenizer.encodePlain(text), eos];
      }
      if (tokenIds.length > prepared.maxNewTokens) {
        tokenIds = tokenIds.slice(0, prepared.maxNewTokens);
        text = tokenizer.decode(tokenIds);
        finishReason = 'length';
        stopString = undefined;
      }
      completed += 1;
      return {
        text,
        tokenIds,
        logProbs: tokenIds.map(() => 0),
        promptIds: prepared.promptIds,
        promptTokens: prepared.promptIds.length,
        finishReason,
        ...(stopString === undefined ? {} : { stopString }),
      };
    },
    applyChatTemplate: (messages) => tokenizer.applyChatTemplate(messages),
    stats: (): PolicyStats => ({
      decodeSteps: 0,
      decodeStepMs: 0,
      decodeRunMs: 0,
      decodeRowSteps: 0,
      prefills: 0,
      prefillMs: 0,
      completed,
      sessionRuns: 0,
      sessionRunMs: 0,
      fullDistributionRuns: 0,
    }),
    async dispose(): Promise<void> {
      disposed = true;
    },
  };
}

/** The policy a configured model path names: a rule policy (`rule:…`) or a model folder loaded with ONNX Runtime. */
export async function loadConfiguredPolicy(modelPath: string, options: PolicyOptions = {}): Promise<Policy> {
  const rule = parseRulePolicyPath(modelPath);
  return rule === null ? loadPolicy(modelPath, options) : loadRulePolicy(rule);
}
