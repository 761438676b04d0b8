/**
 * The `headwise` program as a function: `buildProgram` assembles the subcommands, `runCli` runs one
 * command line and returns its exit code instead of exiting, so tests (the CLI fuzz suite) can drive
 * thousands of command lines in one process. The exit-code rule lives here, once:
 * 0 success · 1 input error (a bad file, model, spec or prompt: HeadwiseError) · 2 usage error (an
 * unknown flag, a flag value of the wrong form or out of range, flags that do not go together:
 * commander's errors and UsageError) · 70 internal error (a bug) · 130 / 143 interrupted (SIGINT / SIGTERM).
 */
import { Command, CommanderError } from 'commander';
import { HeadwiseError, UsageError } from '../errors.js';
import { atlasCommand } from './atlas.js';
import { attributeCommand } from './attribute.js';
import { generateCommand } from './generate.js';
import { importanceCommand } from './importance.js';
import { makeRandomCommand } from './makeRandom.js';
import { modelsCommand } from './models.js';
import { niahCommand } from './niah.js';
import { patchCommand } from './patch.js';
import { quantReportCommand } from './quantReport.js';
import { steerProfileCommand } from './steerProfile.js';
import { serveCommand } from './serve.js';

/** Every subcommand, in the order `headwise --help` lists them. */
const COMMANDS = [atlasCommand, niahCommand, generateCommand, importanceCommand, patchCommand, attributeCommand, makeRandomCommand, modelsCommand, quantReportCommand, serveCommand, steerProfileCommand];

export const EXIT = { ok: 0, input: 1, usage: 2, internal: 70 } as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0    success
  1    input error: a bad file, model, spec or prompt (one line on stderr says what and where)
  2    usage error: an unknown flag, a flag value of the wrong form or out of range, flags that do not go together
  70   internal error: a bug (set HEADWISE_DEBUG=1 for the stack trace)
  130  interrupted (SIGINT; 143 for SIGTERM): temporary files are removed, no partial output is left`;

export interface CliOutput {
  /** Where error lines go (default: process.stderr). */
  writeErr?: (s: string) => void;
  /** Where commander's own output (help, version) goes (default: process.stdout). */
  writeOut?: (s: string) => void;
}

export function buildProgram(out: CliOutput = {}): Command {
  const writeErr = out.writeErr ?? ((s: string) => process.stderr.write(s));
  const writeOut = out.writeOut ?? ((s: string) => process.stdout.write(s));
  const output = {
    writeOut,
    writeErr,
    outputError: (str: string, write: (s: string) => void) => write(`headwise: ${str.trim().split('\n').map((l) => l.trim()).join(' ')}\n`),
  };
  const program = new Command('headwise')
    .description('find out what every attention head of a transformer does, and put it to work')
    .version('0.1.0')
    .showSuggestionAfterError(true)
    .configureOutput(output)
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride();
  for (const cmd of COMMANDS.map((make) => make())) program.addCommand(cmd.exitOverride().configureOutput(output));
  return program;
}

/** Runs one command line (`argv` without node and the script); returns the exit code. */
export async function runCli(argv: string[], out: CliOutput = {}): Promise<number> {
  const writeErr = out.writeErr ?? ((s: string) => process.stderr.write(s));
  const fail = (message: string, code: number) => {
    writeErr(`headwise: error: ${message.split('\n')[0]}\n`);
    return code;
  };
  try {
    await buildProgram(out).parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (e instanceof UsageError) return fail(e.message, EXIT.usage);
    if (e instanceof HeadwiseError) return fail(e.message, EXIT.input);
    if (process.env.HEADWISE_DEBUG) console.error(e);
    return fail(`internal error: ${(e as Error)?.message ?? String(e)} (set HEADWISE_DEBUG=1 for details)`, EXIT.internal);
  }
}
