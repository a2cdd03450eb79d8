/** Errors of the episode steps. Light: no model or storage code, so workers import it without ONNX Runtime. */

/** Bad input that no retry can fix: the activity fails the episode with this message. */
export class EpisodeInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EpisodeInputError';
  }
}
