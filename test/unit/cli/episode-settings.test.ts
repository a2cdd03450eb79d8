/** The episode settings the command line and the configuration give: command line first, defaults left out. */
import { Command } from 'commander';
import { episodeSettingOverrides, withEpisodeSettingOptions } from '../../../cli/episode-settings';

const config = (metricsMode: 'project' | 'hotpotqa-official', memoryContent: 'update' | 'response') => ({
  episodes: { metricsMode, memoryContent },
});

describe('episodeSettingOverrides', () => {
  it('leaves defaults out, so settings made before the options existed are unchanged', () => {
    expect(episodeSettingOverrides({}, config('project', 'update'))).toEqual({});
  });

  it('takes the configuration, then the command line', () => {
    expect(episodeSettingOverrides({}, config('hotpotqa-official', 'response'))).toEqual({
      metricsMode: 'hotpotqa-official',
      memoryContent: 'response',
    });
    expect(
      episodeSettingOverrides(
        { metrics: 'project', memoryContent: 'update' },
        config('hotpotqa-official', 'response'),
      ),
    ).toEqual({});
    expect(episodeSettingOverrides({ memoryContent: 'response' }, config('project', 'update'))).toEqual({
      memoryContent: 'response',
    });
  });

  it('reads --metrics and --memory-content, refusing other values', () => {
    const parse = (args: string[]) =>
      withEpisodeSettingOptions(new Command().exitOverride().configureOutput({ writeErr: () => undefined }))
        .parse(args, { from: 'user' })
        .opts();
    expect(parse(['--metrics', 'hotpotqa-official', '--memory-content', 'response'])).toEqual({
      metrics: 'hotpotqa-official',
      memoryContent: 'response',
    });
    expect(parse([])).toEqual({});
    expect(() => parse(['--metrics', 'squad'])).toThrow(/Allowed choices are project, hotpotqa-official/);
  });
});
