/**
 * Errors raised by the trainer's pure functions. Each message is one line naming what was wrong and what
 * was expected, so an activity can report it as it is.
 */

/** Tensors, gradients or settings handed to a loss or an optimiser step that cannot be used. */
export class TrainingInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
