/**
 * Which policy samples an episode. Settings without a `policyVersion` use the inference worker's configured
 * model; settings with one use that exported version (policies/{version}/ in the blob store), loaded through
 * a version source such as the trainer's `PolicyVersionCache`.
 */
import type { Policy } from '../model';
import { EpisodeInputError } from './errors';

/** Gives the policy of a version; `undefined` = the worker's configured model. */
export interface PolicyProvider {
  policyFor(version: string | undefined): Promise<Policy>;
}

/** Loads exported policy versions by name (for instance `PolicyVersionCache`). */
export interface PolicyVersionSource {
  get(version: string): Promise<Policy>;
}

/**
 * The configured policy for settings without a version, `versions` for the others. Without `versions`, a
 * named version is bad input: this worker cannot serve it, and no retry will change that.
 */
export function policyProvider(configured: Policy, versions?: PolicyVersionSource): PolicyProvider {
  return {
    async policyFor(version: string | undefined): Promise<Policy> {
      if (version === undefined) return configured;
      if (versions === undefined) {
        throw new EpisodeInputError(`policy version ${version} was asked for, but this worker serves only its configured model`);
      }
      return versions.get(version);
    },
  };
}

export function isPolicyProvider(value: Policy | PolicyProvider): value is PolicyProvider {
  return typeof (value as Partial<PolicyProvider>).policyFor === 'function';
}
