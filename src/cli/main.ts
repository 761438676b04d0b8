#!/usr/bin/env node
/**
 * The `headwise` command line. Every command has --help; bad input ends with one line on stderr
 * (`headwise: error: ...`) and a non-zero exit, never a stack trace (set HEADWISE_DEBUG=1 for one).
 */
import { Command, CommanderError } from 'commander';
import { HeadwiseError } from '../errors.js';
import { atlasCommand } from './atlas.js';
import { generateCommand } from './generate.js';
import { makeRandomCommand } from './makeRandom.js';
import { niahCommand } from './niah.js';
import { quantReportCommand } from './quantReport.js';
import { steerProfileCommand } from './steerProfile.js';
import { serveCommand } from './serve.js';

/** Every subcommand, in the order `headwise --help` lists them. */
const COMMANDS = [atlasCommand, niahCommand, generateCommand, makeRandomCommand, quantReportCommand, serveCommand, steerProfileCommand];

export function buildProgram(): Command {
  const program = new Command('headwise')
    .description('find out what every attention head of a transformer does, and put it to work')
    .version('0.1.0')
    .showSuggestionAfterError(true)
    .configureOutput({ outputError: (str, write) => write(`headwise: ${str.trim().replace(/^error: /, 'error: ')}\n`) })
    .exitOverride();
  for (const cmd of COMMANDS.map((make) => make())) program.addCommand(cmd.exitOverride().configureOutput(program.configureOutput()));
  return program;
}

function fail(message: string, code: number): never {
  process.stderr.write(`headwise: error: ${message.split('\n')[0]}\n`);
  process.exit(code);
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
    if (e instanceof HeadwiseError) fail(e.message, 1);
    if (process.env.HEADWISE_DEBUG) console.error(e);
    fail(`internal error: ${(e as Error)?.message ?? String(e)} (set HEADWISE_DEBUG=1 for details)`, 70);
  }
}

main(process.argv.slice(2));
