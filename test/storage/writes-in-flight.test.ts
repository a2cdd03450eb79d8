import { WritesInFlight } from '../../lib/storage';

/** A write that finishes when `finish` is called. */
function controlledWrite(log: string[], name: string): { write: () => Promise<void>; finish: (error?: Error) => void } {
  let settle: (error?: Error) => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    settle = (error) => (error ? reject(error) : resolve());
  });
  return {
    write: () => {
      log.push(`start ${name}`);
      return done.then(() => {
        log.push(`end ${name}`);
      });
    },
    finish: (error) => settle(error),
  };
}

describe('WritesInFlight', () => {
  it('starts at most `limit` writes at once and the next one when a slot frees', async () => {
    const log: string[] = [];
    const writes = new WritesInFlight(2);
    const [a, b, c] = ['a', 'b', 'c'].map((name) => controlledWrite(log, name));
    await writes.add(a.write);
    await writes.add(b.write);
    const third = writes.add(c.write);
    await new Promise((resolve) => setImmediate(resolve));
    expect(log).toEqual(['start a', 'start b']);
    b.finish();
    await third;
    expect(log).toEqual(['start a', 'start b', 'end b', 'start c']);
    a.finish();
    c.finish();
    await writes.drain();
    expect(log.filter((entry) => entry.startsWith('end'))).toHaveLength(3);
  });

  it('drain rethrows the first failure, and no write starts after one failed', async () => {
    const log: string[] = [];
    const writes = new WritesInFlight(1);
    const a = controlledWrite(log, 'a');
    await writes.add(a.write);
    const next = writes.add(controlledWrite(log, 'b').write);
    a.finish(new Error('disk full'));
    await expect(next).rejects.toThrow('disk full');
    await expect(writes.drain()).rejects.toThrow('disk full');
    expect(log).toEqual(['start a']);
  });

  it('refuses a limit below 1', () => {
    expect(() => new WritesInFlight(0)).toThrow('at least 1');
  });
});
