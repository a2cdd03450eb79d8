/**
 * AdamW with linear warm-up and global gradient-norm clipping, as torch.optim.AdamW and
 * torch.nn.utils.clip_grad_norm_ compute them (REMEMR1.md §4).
 *
 * Determinism: tensors are visited in sorted-name order and elements in index order, every element is
 * computed in float64 and stored as float32, so the same inputs give bit-identical parameters and moments on
 * every run and every host, and a run resumed from checkpointed (params, state) continues exactly.
 */
import { TrainingInputError } from './errors';

export type Tensors = Map<string, Float32Array>;

export interface AdamWSettings {
  /** The peak learning rate, reached after the warm-up. */
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Decoupled weight decay (multiplied by the scheduled learning rate, as torch does). */
  weightDecay: number;
  /**
   * Warm-up length in optimiser updates (0: none). verl advances its scheduler once per training step, not
   * per mini-batch update; to reproduce a run configured in training steps, multiply by updates per step.
   */
  warmupSteps: number;
  /** Clip the global gradient norm to this (Infinity: no clipping). */
  maxGradNorm: number;
}

/** The released ReMemR1 settings (for 3B/7B models; small models need a larger learning rate). */
export const defaultAdamWSettings: AdamWSettings = {
  learningRate: 1e-6,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  weightDecay: 0.01,
  warmupSteps: 20,
  maxGradNorm: 1.0,
};

/** Everything the optimiser carries between updates; checkpoint it with the parameters. */
export interface AdamWState {
  /** Updates taken so far. */
  step: number;
  firstMoment: Map<string, Float32Array>;
  secondMoment: Map<string, Float32Array>;
}

export interface AdamWStepResult {
  /** The learning rate this update used. */
  learningRate: number;
  /** The global gradient norm before clipping. */
  gradNorm: number;
  /** The factor the gradients were multiplied by (1 when not clipped). */
  clipScale: number;
}

/** Zero moments shaped like the parameters, at step 0. */
export function createAdamWState(params: ReadonlyMap<string, Float32Array>): AdamWState {
  const zeros = (): Map<string, Float32Array> =>
    new Map([...params].map(([name, value]) => [name, new Float32Array(value.length)]));
  return { step: 0, firstMoment: zeros(), secondMoment: zeros() };
}

/**
 * The learning rate of the update with zero-based index `step`: lr · min(1, (step + 1) / warmupSteps), then
 * constant. Counting from step + 1 makes the first update move the weights; the HF/verl schedule
 * (step / warmupSteps) spends it with a learning rate of 0.
 */
export function learningRateAt(
  step: number,
  settings: Pick<AdamWSettings, 'learningRate' | 'warmupSteps'>,
): number {
  const { learningRate, warmupSteps } = settings;
  if (warmupSteps <= 0) return learningRate;
  return learningRate * Math.min(1, (step + 1) / warmupSteps);
}

/** √(Σ g²) over every element of every tensor. */
export function globalGradNorm(grads: ReadonlyMap<string, Float32Array>): number {
  let sumOfSquares = 0;
  for (const name of sortedNames(grads)) {
    const grad = grads.get(name) as Float32Array;
    for (let i = 0; i < grad.length; i++) sumOfSquares += grad[i] * grad[i];
  }
  return Math.sqrt(sumOfSquares);
}

/**
 * Scales the gradients in place so their global norm is at most `maxNorm`, as clip_grad_norm_ does: scale =
 * min(1, maxNorm / (norm + 1e-6)). Throws, naming the first tensor holding NaN or ±Infinity, if the norm is
 * not finite: an update from such gradients would corrupt every weight.
 */
export function clipGradients(
  grads: Map<string, Float32Array>,
  maxNorm: number,
): { gradNorm: number; clipScale: number } {
  if (!(maxNorm > 0)) throw new TrainingInputError(`maxGradNorm must be positive, got ${maxNorm}`);
  const gradNorm = globalGradNorm(grads);
  if (!Number.isFinite(gradNorm)) {
    const names = sortedNames(grads);
    const bad = names.find((name) =>
      (grads.get(name) as Float32Array).some((value) => !Number.isFinite(value)),
    );
    // All values finite but the sum overflowed float64: name no tensor rather than a wrong one.
    throw new TrainingInputError(
      bad === undefined
        ? `the gradient norm overflowed (${gradNorm}); no update was made`
        : `gradient '${bad}' holds a non-finite value; no update was made`,
    );
  }
  const clipScale = Math.min(1, maxNorm / (gradNorm + 1e-6));
  if (clipScale < 1) {
    for (const name of sortedNames(grads)) {
      const grad = grads.get(name) as Float32Array;
      for (let i = 0; i < grad.length; i++) grad[i] = grad[i] * clipScale;
    }
  }
  return { gradNorm, clipScale };
}

/**
 * By convention biases and normalisation weights are not decayed (decay would pull a norm's scale toward 0
 * rather than regularise). verl itself decays every parameter: pass `() => true` to reproduce it.
 */
export function decaysByDefault(name: string): boolean {
  return !(name.endsWith('.bias') || name.toLowerCase().includes('norm'));
}

/**
 * One AdamW update, in place on `params`, `grads` (clipped) and `state`. With t = state.step + 1 and
 * lr = learningRateAt(state.step):
 *
 *   g ← clipped g;   p ← p − lr·wd·p (if decays(name))
 *   m ← β1·m + (1 − β1)·g;   v ← β2·v + (1 − β2)·g²
 *   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
 *
 * A parameter without a gradient is left alone (frozen), as torch skips parameters whose grad is None.
 * Nothing is modified when the input is rejected.
 */
export function adamWStep(
  params: Map<string, Float32Array>,
  grads: Map<string, Float32Array>,
  state: AdamWState,
  settings: AdamWSettings,
  decays: (name: string) => boolean = decaysByDefault,
): AdamWStepResult {
  checkSettings(settings);
  for (const name of sortedNames(grads)) {
    const length = (grads.get(name) as Float32Array).length;
    const param = params.get(name);
    if (param === undefined) throw new TrainingInputError(`gradient '${name}' matches no parameter`);
    if (param.length !== length) {
      throw new TrainingInputError(
        `gradient '${name}' has ${length} elements but the parameter has ${param.length}`,
      );
    }
    for (const [kind, moments] of [
      ['first', state.firstMoment],
      ['second', state.secondMoment],
    ] as const) {
      if (moments.get(name)?.length !== length) {
        throw new TrainingInputError(
          `the optimiser state's ${kind} moment of '${name}' is missing or mis-sized`,
        );
      }
    }
  }
  const { gradNorm, clipScale } = clipGradients(grads, settings.maxGradNorm);

  const { beta1, beta2, epsilon, weightDecay } = settings;
  const learningRate = learningRateAt(state.step, settings);
  const t = state.step + 1;
  const stepSize = learningRate / (1 - beta1 ** t);
  const secondCorrectionSqrt = Math.sqrt(1 - beta2 ** t);
  for (const name of sortedNames(grads)) {
    const grad = grads.get(name) as Float32Array;
    const param = params.get(name) as Float32Array;
    const m = state.firstMoment.get(name) as Float32Array;
    const v = state.secondMoment.get(name) as Float32Array;
    const decay = decays(name) ? 1 - learningRate * weightDecay : 1;
    for (let i = 0; i < grad.length; i++) {
      const g = grad[i];
      const first = beta1 * m[i] + (1 - beta1) * g;
      const second = beta2 * v[i] + (1 - beta2) * g * g;
      m[i] = first;
      v[i] = second;
      param[i] = param[i] * decay - (stepSize * first) / (Math.sqrt(second) / secondCorrectionSqrt + epsilon);
    }
  }
  state.step = t;
  return { learningRate, gradNorm, clipScale };
}

function sortedNames(tensors: ReadonlyMap<string, unknown>): string[] {
  // Code-unit order, independent of locale.
  return [...tensors.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function checkSettings(settings: AdamWSettings): void {
  const { learningRate, beta1, beta2, epsilon, weightDecay, warmupSteps, maxGradNorm } = settings;
  const problems = [
    learningRate >= 0 && Number.isFinite(learningRate) ? '' : `learningRate ${learningRate} (expected >= 0)`,
    beta1 >= 0 && beta1 < 1 ? '' : `beta1 ${beta1} (expected in [0, 1))`,
    beta2 >= 0 && beta2 < 1 ? '' : `beta2 ${beta2} (expected in [0, 1))`,
    epsilon > 0 ? '' : `epsilon ${epsilon} (expected > 0)`,
    weightDecay >= 0 ? '' : `weightDecay ${weightDecay} (expected >= 0)`,
    Number.isInteger(warmupSteps) && warmupSteps >= 0
      ? ''
      : `warmupSteps ${warmupSteps} (expected an integer >= 0)`,
    maxGradNorm > 0 ? '' : `maxGradNorm ${maxGradNorm} (expected > 0)`,
  ].filter((problem) => problem !== '');
  if (problems.length > 0) throw new TrainingInputError(`invalid AdamW settings: ${problems.join('; ')}`);
}
