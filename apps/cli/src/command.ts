/**
 * Commands as data: a command declares its flags once (`args`), and that one
 * declaration drives the parser, the typed values its handler receives, its
 * --help, the bash completion and the flags docs/cli.md may name.
 */
import { parseArgs } from 'node:util'
import type { Writable } from 'node:stream'
import { DistswarmError, isCode, type Code } from '@distswarm/protocol'

export interface IO {
  stdout: Writable
  stderr: Writable
  env: NodeJS.ProcessEnv
  /** Aborted on SIGINT/SIGTERM: long-running commands shut down and return. */
  signal: AbortSignal
}

interface ArgBase {
  /** One letter: -x as well as --name. */
  short?: string
  /** The line --help shows. */
  description: string
}
/** A flag that is there or not: --json. */
export interface BooleanArg extends ArgBase { type: 'boolean' }
/** A flag with a value: --control PATH, or --distdir DIR repeated when `multiple`. */
export interface StringArg extends ArgBase {
  type: 'string'
  /** In --help: --control PATH. Default VALUE. */
  valueName?: string
  multiple?: boolean
}
export type ArgSpec = BooleanArg | StringArg
export type Args = Record<string, ArgSpec>

/** What the handler gets for one flag: undefined when not given. */
export type ArgValue<S extends ArgSpec> =
  S extends BooleanArg ? boolean | undefined
    : S extends { multiple: true } ? string[] | undefined
      : string | undefined
/** The flags given, by name; a flag not given is absent. */
export type Values<A extends Args> = { -readonly [K in keyof A]?: ArgValue<A[K]> }

export interface CommandMeta {
  name: string
  summary: string
  usage: string
  /** Shown under --help. */
  examples: string[]
}

export interface Command<A extends Args = Args> {
  meta: CommandMeta
  args: A
  /** Positional arguments: [min, max]. Default none. */
  positionals?: [number, number]
  // A method, not a function property: a Command<{ json: … }> is then a Command, for the list of all.
  run (ctx: { values: Values<A>, positionals: string[] }, io: IO): Promise<number>
}

export const HELP_ARG = { type: 'boolean', short: 'h', description: 'show this help' } as const satisfies BooleanArg

/** A command, with --help added to the flags it declares (main prints the help). */
export function defineCommand<const A extends Args> (cmd: Command<A>): Command<A & { help: typeof HELP_ARG }> {
  return { ...cmd, args: { ...cmd.args, help: HELP_ARG } }
}

export class UsageError extends DistswarmError {
  constructor (message: string) {
    super('ERR_USAGE', message)
  }
}

/**
 * Exit codes of the CLI contract: 0 success, 1 failed, 2 usage/config,
 * 3 no agent to answer (not there, gone mid-request, or not started yet).
 * Every other code is 1; docs/cli.md lists them with these numbers.
 */
export const EXIT_CODES: Partial<Record<Code, 2 | 3>> = {
  ERR_AGENT_UNREACHABLE: 3,
  ERR_CONTROL_CLOSED: 3,
  ERR_AGENT_NOT_STARTED: 3,
  ERR_USAGE: 2,
  ERR_CONFIG: 2,
  ERR_CONFIG_EXISTS: 2,
  ERR_INVALID_NETWORK_KEY: 2
}

export function exitCodeOf (err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code
  return isCode(code) ? EXIT_CODES[code] ?? 1 : 1
}

const flagOf = (name: string): string => `--${name}`

/**
 * The command line taken apart against `args`. Usage errors name the flag as
 * typed and the flags the command takes, in one line.
 */
export function parse<A extends Args> (cmd: Command<A>, argv: string[]): { values: Values<A>, positionals: string[] } {
  const options = Object.fromEntries(Object.entries(cmd.args).map(([name, a]) => [name, { type: a.type, ...(a.short ? { short: a.short } : {}) }]))
  // Not strict: the tokens are checked here, for messages of our own.
  const { tokens } = parseArgs({ args: argv, options, allowPositionals: true, strict: false, tokens: true })
  const values: Record<string, string | boolean | string[]> = {}
  const positionals: string[] = []
  const known = (): string => `(${cmd.meta.name} takes ${Object.keys(cmd.args).map(flagOf).join(', ')})`
  for (const t of tokens) {
    if (t.kind === 'positional') positionals.push(t.value)
    if (t.kind !== 'option') continue
    const spec = Object.hasOwn(cmd.args, t.name) ? cmd.args[t.name] : undefined
    if (!spec) throw new UsageError(`unknown option ${t.rawName} ${known()}`)
    if (spec.type === 'boolean') {
      if (t.value !== undefined) throw new UsageError(`${t.rawName} takes no value`)
      values[t.name] = true
      continue
    }
    // `--control --json`: a value that looks like a flag is a forgotten value (write --control=-x for one that starts with -)
    if (t.value === undefined || (!t.inlineValue && t.value.startsWith('-'))) {
      throw new UsageError(`${t.rawName} needs a value: ${t.rawName} ${spec.valueName ?? 'VALUE'}`)
    }
    if (spec.multiple) values[t.name] = [...(values[t.name] as string[] | undefined ?? []), t.value]
    else values[t.name] = t.value
  }
  const [min, max] = cmd.positionals ?? [0, 0]
  if (!values.help && (positionals.length < min || positionals.length > max)) {
    const count = min === max ? String(min) : max === Infinity ? `at least ${min}` : `${min} to ${max}`
    throw new UsageError(`expected ${count} argument${max === 1 ? '' : 's'}, got ${positionals.length}; usage: ${cmd.meta.usage}`)
  }
  return { values: values as Values<A>, positionals }
}

/** `--name VALUE` as --help and the docs show a flag. */
export function flagText (name: string, a: ArgSpec): string {
  return `${a.short ? `-${a.short}, ` : ''}--${name}${a.type === 'string' ? ` ${a.valueName ?? 'VALUE'}` : ''}${a.type === 'string' && a.multiple ? ' (repeatable)' : ''}`
}

export function helpText (cmd: Command): string {
  const opts = Object.entries(cmd.args).map(([name, a]) => `  ${(flagText(name, a) + '  ').padEnd(34)}${a.description}`)
  return [
    `distswarm ${cmd.meta.name}: ${cmd.meta.summary}`, '',
    `usage: ${cmd.meta.usage}`, '',
    'options:', ...opts, '',
    'examples:', ...cmd.meta.examples.map((e) => `  ${e}`), ''
  ].join('\n')
}

export const CONFIG_ARG = {
  type: 'string',
  valueName: 'FILE',
  description: 'config file (env DISTSWARM_CONFIG; default /etc/distswarm/distswarm.toml as root, else $XDG_CONFIG_HOME/distswarm/distswarm.toml)'
} as const satisfies StringArg

/** Where a command finds the agent: --control, else DISTSWARM_CONTROL, else the config file's `control`, else the default. */
export const CONTROL_ARGS = {
  control: { type: 'string', valueName: 'PATH', description: "agent control socket (env DISTSWARM_CONTROL; default: the config file's control, else the agent's default)" },
  config: { ...CONFIG_ARG, description: 'config file to take the control socket from (env DISTSWARM_CONFIG; default: the one `distswarm agent` reads)' }
} as const satisfies Args

/** Shared flags of the commands that talk to a running agent. */
export const CLIENT_ARGS = {
  ...CONTROL_ARGS,
  json: { type: 'boolean', description: 'print one JSON document (fields: docs/cli.md)' }
} as const satisfies Args

export function writeJson (io: IO, value: unknown): void {
  io.stdout.write(JSON.stringify(value) + '\n')
}
