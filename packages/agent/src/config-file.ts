/**
 * Where an agent's options come from: the config file (TOML), then the
 * environment (DISTSWARM_*), then flags, each overriding the one before.
 * Values are only collected here, with where each came from; resolveConfig
 * checks them.
 */
import { open } from 'node:fs/promises'
import { parse, stringify, TomlError } from 'smol-toml'
import { defaultConfigPath, type AgentOptions, type OptionOrigins } from './config.js'
import { AgentError } from './errors.js'
import { envName, OPTION_BY_NAME, OPTIONS, type OptionDef } from './options.js'

/** A config file is a few hundred bytes; a huge one is a mistake, not a config. */
const MAX_CONFIG_BYTES = 1024 * 1024

export interface LoadedOptions {
  options: AgentOptions
  origins: OptionOrigins
  /** the file read, or null when there was none */
  configPath: string | null
}

export interface LoadInit {
  /** The config file; it must exist. Default: $DISTSWARM_CONFIG (must exist too), else defaultConfigPath(), read when it exists. */
  config?: string
  env?: NodeJS.ProcessEnv
  /** Flag values by option name, as parseArgs gives them; other names are ignored. */
  flags?: Record<string, unknown>
}

/** Collects the options of file, environment and flags, in rising priority. */
export async function loadOptions (init: LoadInit = {}): Promise<LoadedOptions> {
  const env = init.env ?? process.env
  const explicit = init.config ?? (env.DISTSWARM_CONFIG || undefined)
  const path = explicit ?? defaultConfigPath(env)
  const text = await readConfigFile(path, explicit !== undefined)
  const file = text === null ? { options: {}, origins: {} } : parseConfig(text, path)
  const fromEnv = collect((o) => {
    const raw = env[envName(o)]
    // An empty variable is an unset one (as `Environment=DISTSWARM_X=` leaves it).
    return raw === undefined || raw === '' ? undefined : o.list ? raw.split(/[\s,]+/).filter(Boolean) : raw
  }, envName)
  const fromFlags = optionsFromFlags(init.flags ?? {})
  const options = { ...file.options, ...fromEnv.options, ...fromFlags.options }
  const origins = { ...file.origins, ...fromEnv.origins, ...fromFlags.origins }
  return { options, origins, configPath: text === null ? null : path }
}

/** The options of the given flag values (by option name, as parseArgs gives them), each from "--name". */
export function optionsFromFlags (flags: Record<string, unknown>): { options: AgentOptions, origins: OptionOrigins } {
  return collect((o) => flags[o.name], (o) => `--${o.name}`)
}

function collect (valueOf: (o: OptionDef) => unknown, originOf: (o: OptionDef) => string): { options: AgentOptions, origins: OptionOrigins } {
  const options: Record<string, unknown> = {}
  const origins: OptionOrigins = {}
  for (const o of OPTIONS) {
    const value = valueOf(o)
    if (value === undefined) continue
    options[o.key] = value
    origins[o.key] = originOf(o)
  }
  return { options: options as AgentOptions, origins }
}

/** The file's text; null when it is the default one and absent. */
async function readConfigFile (path: string, mustExist: boolean): Promise<string | null> {
  let fh
  try {
    fh = await open(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !mustExist) return null
    throw AgentError.BAD_OPTION(null, path, `cannot read the config file: ${(err as Error).message}`)
  }
  try {
    const st = await fh.stat()
    if (st.size > MAX_CONFIG_BYTES) throw AgentError.BAD_OPTION(null, path, `${st.size} bytes; a config file has at most ${MAX_CONFIG_BYTES}`)
    return await fh.readFile('utf8')
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_CONFIG') throw err
    throw AgentError.BAD_OPTION(null, path, `cannot read the config file: ${(err as Error).message}`)
  } finally {
    await fh.close()
  }
}

/**
 * The options a config file's text sets, each with its "path:line". Throws
 * ERR_CONFIG for a TOML syntax error or an unknown key, naming the line.
 */
export function parseConfig (text: string, path: string): { options: AgentOptions, origins: OptionOrigins } {
  let doc: Record<string, unknown>
  try {
    doc = parse(text)
  } catch (err) {
    if (!(err instanceof TomlError)) throw err
    const why = err.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '')
    throw AgentError.BAD_OPTION(null, `${path}:${err.line}`, `not valid TOML: ${why}`)
  }
  const lines = text.split('\n')
  const options: Record<string, unknown> = {}
  const origins: OptionOrigins = {}
  for (const [key, value] of Object.entries(doc)) {
    const line = lineOf(lines, key)
    const origin = line === null ? path : `${path}:${line}`
    const o = OPTION_BY_NAME.get(key)
    if (!o) throw AgentError.BAD_OPTION(key, origin, `unknown option${suggest(key)}`)
    options[o.key] = value
    origins[o.key] = origin
  }
  return { options: options as AgentOptions, origins }
}

/**
 * The line a top-level key is set on (TOML parsers give values, not
 * lines): `key =`, `"key" =`, `key.sub =` or a `[key]` table header.
 */
function lineOf (lines: string[], key: string): number | null {
  const k = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const re = new RegExp(`^\\s*(?:\\[+\\s*)?(?:${k}|"${k}"|'${k}')\\s*[=.\\]]`)
  const i = lines.findIndex((l) => re.test(l))
  return i === -1 ? null : i + 1
}

function suggest (key: string): string {
  const near = OPTIONS.find((o) => o.name === key.toLowerCase().replaceAll('_', '-') || `${o.name}s` === key)
  return near ? ` (did you mean ${near.name}?)` : ` (known: ${OPTIONS.map((o) => o.name).join(', ')})`
}

function wrap (text: string, width = 76): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line ? `${line} ${word}` : word
    }
  }
  return [...lines, line]
}

const HEADER = [
  'distswarm agent configuration (TOML).',
  '',
  'Every option can also be given in the environment as DISTSWARM_<NAME> (dashes as underscores; lists space- or comma-separated) or as a flag, --<name>. Flags win over the environment, which wins over this file.',
  'A commented-out line shows an example; without it, the default applies. Unknown options and bad values stop the agent at start, naming the option and its line.'
]

/**
 * A documented config file: every option with its meaning and default, set
 * to `values[name]` where given, else commented out with an example.
 * With no values it is contrib/distswarm.toml.
 */
export function renderConfig (values: Record<string, unknown> = {}): string {
  for (const name of Object.keys(values)) if (!OPTION_BY_NAME.has(name)) throw AgentError.BAD_OPTION(name, null, 'unknown option')
  const comment = (line: string): string => line ? `# ${line}` : '#'
  const out = HEADER.flatMap((p) => p ? wrap(p) : ['']).map(comment)
  for (const o of OPTIONS) {
    const value = values[o.name]
    out.push('', ...wrap(o.description).map(comment), ...wrap(`Default: ${o.default}.`).map(comment))
    out.push(value === undefined ? comment(tomlLine(o.name, o.example)) : tomlLine(o.name, value))
  }
  return out.join('\n') + '\n'
}

const tomlLine = (name: string, value: unknown): string => stringify({ [name]: value }).trim()
