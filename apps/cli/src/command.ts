import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { Writable } from 'node:stream'
import { DistswarmError } from '@distswarm/protocol'

export interface IO {
  stdout: Writable
  stderr: Writable
  env: NodeJS.ProcessEnv
  /** Aborted on SIGINT/SIGTERM: long-running commands shut down and return. */
  signal: AbortSignal
}

/** A parseArgs option, plus the line --help shows for it. */
export type OptionSpec = NonNullable<ParseArgsConfig['options']>[string] & { description?: string, /** in --help; default VALUE */ valueName?: string }
type Options = Record<string, OptionSpec>

export interface Command<O extends Options = Options> {
  name: string
  summary: string
  usage: string
  /** Shown under --help. */
  examples: string[]
  options: O
  /** Positional arguments: [min, max]. */
  positionals?: [number, number]
  run: (args: { values: Record<string, unknown>, positionals: string[] }, io: IO) => Promise<number>
}

export function defineCommand<O extends Options> (cmd: Command<O>): Command<O> {
  return cmd
}

export class UsageError extends DistswarmError {
  constructor (message: string) {
    super('ERR_USAGE', message)
  }
}

/** Exit codes of the CLI contract: 0 success, 1 failed, 2 usage/config, 3 agent unreachable. */
export function exitCodeOf (err: unknown): number {
  const code = (err as { code?: unknown }).code
  // not there, or gone in the middle of the request
  if (code === 'ERR_AGENT_UNREACHABLE' || code === 'ERR_CONTROL_CLOSED') return 3
  if (code === 'ERR_USAGE' || code === 'ERR_CONFIG' || code === 'ERR_CONFIG_EXISTS' || code === 'ERR_INVALID_NETWORK_KEY') return 2
  return 1
}

export function parse (cmd: Command, argv: string[]): { values: Record<string, unknown>, positionals: string[] } {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: cmd.options, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError(`${cmd.name}: ${(err as Error).message}`)
  }
  const [min, max] = cmd.positionals ?? [0, 0]
  if (!parsed.values.help && (parsed.positionals.length < min || parsed.positionals.length > max)) {
    throw new UsageError(`${cmd.name}: expected ${min === max ? min : `${min} to ${max === Infinity ? 'any number of' : max}`} argument(s); usage: ${cmd.usage}`)
  }
  return parsed
}

export function helpText (cmd: Command): string {
  const opts = Object.entries(cmd.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` ${o.valueName ?? 'VALUE'}` : ''}${o.multiple ? ' (repeatable)' : ''}`
    return `  ${(flag + '  ').padEnd(34)}${o.description ?? ''}`
  })
  return [
    `distswarm ${cmd.name}: ${cmd.summary}`, '',
    `usage: ${cmd.usage}`, '',
    'options:', ...opts, '',
    'examples:', ...cmd.examples.map((e) => `  ${e}`), ''
  ].join('\n')
}

/** Shared options of the commands that talk to a running agent. */
export const CLIENT_OPTIONS = {
  control: { type: 'string', valueName: 'PATH', description: 'agent control socket (env DISTSWARM_CONTROL)' },
  json: { type: 'boolean', description: 'print one JSON document (fields: docs/cli.md)' },
  help: { type: 'boolean', short: 'h', description: 'show this help' }
} as const

export function writeJson (io: IO, value: unknown): void {
  io.stdout.write(JSON.stringify(value) + '\n')
}
