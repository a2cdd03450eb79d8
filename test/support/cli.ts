/**
 * The `rememr1` command run as a user runs it (`node --import tsx cli/main.ts …`, what `npm run rememr1 --` runs),
 * in a process group of its own so that a signal reaches it as a terminal's Ctrl-C does, and bounded in time: the
 * group is killed, and the run rejects, if it outlives its limit. One runner for every end-to-end suite.
 */
import { spawn } from 'node:child_process';
import { projectRoot } from '../../temporal.config';

export interface CliRun {
  code: number | null;
  /** The signal that ended the command itself. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** From the signal (or the start, when none was sent) to the end of the command. */
  seconds: number;
}

export interface RunningCli {
  /** Resolves when the command has ended and its output is closed. */
  done: Promise<CliRun>;
  /** Sends a signal to the command's process group, as a terminal's Ctrl-C does. */
  signal(signal: NodeJS.Signals): void;
}

export interface CliOptions {
  env: NodeJS.ProcessEnv;
  /** Default 90 s. */
  timeoutMs?: number;
  /** Called with everything printed on standard output so far, at each new piece. */
  onStdout?: (stdout: string) => void;
  /** The program and its leading arguments; default: this Node with tsx, on cli/main.ts. */
  command?: readonly string[];
}

/** Starts `rememr1 …args`; see the module comment. */
export function startRememr1(args: readonly string[], options: CliOptions): RunningCli {
  const timeoutMs = options.timeoutMs ?? 90_000;
  const [program, ...leading] = options.command ?? [process.execPath, '--import', 'tsx', 'cli/main.ts'];
  const child = spawn(program, [...leading, ...args], { cwd: projectRoot, env: options.env, detached: true });
  let started = Date.now();
  const done = new Promise<CliRun>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const killer = setTimeout(() => {
      process.kill(-(child.pid as number), 'SIGKILL');
      reject(new Error(`rememr1 ${args.join(' ')} did not end within ${timeoutMs / 1000}s\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.stdout.on('data', (data: Buffer) => {
      stdout += data.toString();
      options.onStdout?.(stdout);
    });
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
  return {
    done,
    signal: (signal) => {
      started = Date.now();
      process.kill(-(child.pid as number), signal);
    },
  };
}

/** Runs `rememr1 …args` to its end. */
export function runRememr1(args: readonly string[], options: CliOptions): Promise<CliRun> {
  return startRememr1(args, options).done;
}

/** Standard error without the package manager's own warnings (npm prints some for every run). */
export function ownStderr(run: CliRun): string {
  return run.stderr
    .split('\n')
    .filter((line) => line.trim() !== '' && !/^npm warn/i.test(line))
    .join('\n');
}
