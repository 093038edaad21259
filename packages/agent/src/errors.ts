import { DistswarmError } from '@distswarm/protocol'

export class AgentError extends DistswarmError {
  static CONFIG (why: string): AgentError {
    return new AgentError('ERR_CONFIG', why)
  }

  /** A bad option: `option` is its name, `origin` where the value came from (file:line, flag or variable). */
  static BAD_OPTION (option: string | null, origin: string | null, why: string): ConfigError {
    return new ConfigError(option, origin, why)
  }

  static CONFIG_EXISTS (path: string): AgentError {
    return new AgentError('ERR_CONFIG_EXISTS', `${path} exists already; pass --force to replace it (and its network key)`)
  }

  static SEED_ONLY (): AgentError {
    return new AgentError('ERR_SEED_ONLY', 'this agent is a seed: it serves files but never fetches; fetch from a box not in seed mode')
  }

  static AMBIGUOUS_PEER (query: string, keys: string[]): AgentError {
    return new AgentError('ERR_AMBIGUOUS', `${JSON.stringify(query.slice(0, 128))} matches ${keys.length} peers (${keys.map((k) => k.slice(0, 12)).join(', ')}); give more of the key`)
  }

  static AMBIGUOUS (name: string, digests: string[]): AgentError {
    return new AgentError('ERR_AMBIGUOUS', `${name}: peers hold ${digests.length} different files of that name (BLAKE2B ${digests.map((d) => d.slice(0, 16)).join(', ')}…); ask by digest`)
  }

  static DIGEST_MISMATCH (name: string, what: string): AgentError {
    return new AgentError('ERR_DIGEST_MISMATCH', `${name}: the peers' file does not match the requested ${what}`)
  }

  /** A gateway PATH that the binhost's index does not list (or whose build nobody holds). */
  static BUILD_NOT_FOUND (path: string, why: string | null): AgentError {
    return new AgentError('ERR_NOT_FOUND', `${JSON.stringify(path.slice(0, 300))} is not a build this box's binhost offers${why ? `: ${why}` : ''}`)
  }

  static BAD_IDENTITY (path: string, why: string): AgentError {
    return new AgentError('ERR_BAD_IDENTITY', `${path}: ${why}; move it away to create a new identity`)
  }

  /** A call before start() or after stop(). */
  static NOT_STARTED (what = 'the agent'): AgentError {
    return new AgentError('ERR_AGENT_NOT_STARTED', `${what} has not started (or has stopped)`)
  }

  /** An option handed to a constructor (not a user's config: that is BAD_OPTION) that is out of range or of the wrong type. */
  static INVALID_OPTION (option: string, why: string): AgentError {
    return new AgentError('ERR_INVALID_OPTION', `invalid option ${option}: ${why}`)
  }

  static CONTROL_IN_USE (path: string): AgentError {
    return new AgentError('ERR_CONTROL_IN_USE', `another agent already answers on ${path}`)
  }

  static METRICS_LISTEN (address: string, cause: unknown): AgentError {
    return new AgentError('ERR_METRICS_LISTEN', `cannot serve metrics on ${address}: ${(cause as Error).message}`, { cause })
  }

  static UNREACHABLE (path: string, cause: unknown): AgentError {
    return new AgentError('ERR_AGENT_UNREACHABLE', `no agent answers on ${path} (is \`distswarm agent\` running?)`, { cause })
  }

  static BAD_REQUEST (why: string): AgentError {
    return new AgentError('ERR_BAD_REQUEST', `bad control request: ${why}`)
  }

  static UNKNOWN_METHOD (method: string): AgentError {
    return new AgentError('ERR_UNKNOWN_METHOD', `bad control request: unknown method ${JSON.stringify(method.slice(0, 64))}`)
  }

  static LINE_TOO_LONG (max: number): AgentError {
    return new AgentError('ERR_LINE_TOO_LONG', `control line longer than ${max} bytes; connection closed`)
  }

  static BAD_REPLY (why: string): AgentError {
    return new AgentError('ERR_BAD_REPLY', `bad reply from the agent: ${why}`)
  }

  static CONTROL_CLOSED (): AgentError {
    return new AgentError('ERR_CONTROL_CLOSED', 'the agent closed the control connection before answering')
  }
}

/** ERR_CONFIG about one option, naming it and where its value came from. */
export class ConfigError extends AgentError {
  readonly option: string | null
  readonly origin: string | null

  constructor (option: string | null, origin: string | null, why: string) {
    const where = option && origin ? `${option} (${origin})` : option ?? origin
    super('ERR_CONFIG', where ? `${where}: ${why}` : why)
    this.option = option
    this.origin = origin
  }
}
