/**
 * The order in which a step's sequences are cut into mini-batches.
 *
 * The permutation is a pure function of (seed, epoch): a fresh xoshiro128** stream per epoch, labelled with the
 * epoch. There is therefore no generator state to checkpoint; a resumed update recomputes the same order from
 * the same seed and epoch. (Xoshiro128 exposes no state accessors, and none is needed this way.)
 */
import { Xoshiro128 } from '../model/random';
import { TrainingInputError } from './errors';

/** A uniformly random permutation of 0 … count − 1 (Fisher–Yates), determined by seed and epoch alone. */
export function shuffledOrder(count: number, seed: string, epoch: number): number[] {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new TrainingInputError(`count must be a non-negative integer, got ${count}`);
  }
  if (!Number.isSafeInteger(epoch) || epoch < 0) {
    throw new TrainingInputError(`epoch must be a non-negative integer, got ${epoch}`);
  }
  const random = Xoshiro128.forLabel(seed, `training/shuffle/epoch-${epoch}`);
  const order = Array.from({ length: count }, (_, index) => index);
  for (let i = count - 1; i > 0; i--) {
    const j = uniformBelow(random, i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** An unbiased integer in [0, bound): rejects the top 2³² mod bound values so every residue is equally likely. */
function uniformBelow(random: Xoshiro128, bound: number): number {
  if (bound > 2 ** 32) throw new TrainingInputError(`cannot shuffle more than 2^32 items, got ${bound}`);
  const limit = 2 ** 32 - (2 ** 32 % bound);
  for (;;) {
    const value = random.nextUint32();
    if (value < limit) return value % bound;
  }
}
