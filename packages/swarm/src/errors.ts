import { DistswarmError, REMOTE_CODES, type ErrorCodeName } from '@distswarm/protocol'

export class SwarmError extends DistswarmError {
  static INVALID_NETWORK_KEY (why: string): SwarmError {
    return new SwarmError('ERR_INVALID_NETWORK_KEY', `invalid network key: ${why}`)
  }

  static AUTH_FAILED (why: string): SwarmError {
    return new SwarmError('ERR_AUTH_FAILED', `peer failed membership check: ${why}`)
  }

  static TIMEOUT (what: string, ms: number): SwarmError {
    return new SwarmError('ERR_TIMEOUT', `${what} timed out after ${ms} ms`)
  }

  static PEER_CLOSED (): SwarmError {
    return new SwarmError('ERR_PEER_CLOSED', 'peer connection closed')
  }

  static REMOTE (code: ErrorCodeName, message: string): SwarmError {
    return new SwarmError(REMOTE_CODES[code], `peer answered ${code}${message ? `: ${message}` : ''}`)
  }

  static PEER_DEAD (ms: number, idle = false): SwarmError {
    return new SwarmError('ERR_PEER_DEAD', idle
      ? `peer silent for ${ms} ms, its pings unanswered: gone (unplugged, cut off or frozen)`
      : `peer silent for ${ms} ms during a transfer: gone`)
  }

  static INVALID_OPTION (name: string, why: string): SwarmError {
    return new SwarmError('ERR_INVALID_OPTION', `invalid option ${name}: ${why}`)
  }

  static PROTOCOL_VIOLATION (why: string): SwarmError {
    return new SwarmError('ERR_PROTOCOL_VIOLATION', `peer broke the protocol: ${why}`)
  }

  static NOT_FOUND (what: string): SwarmError {
    return new SwarmError('ERR_NOT_FOUND', `no connected peer has ${what}`)
  }

  static ALL_SOURCES_FAILED (name: string, last: unknown): SwarmError {
    const why = last instanceof Error ? last.message : String(last)
    return new SwarmError('ERR_ALL_SOURCES_FAILED', `${name}: every peer that has it failed (last: ${why})`, { cause: last })
  }

  static BANNED (publicKeyHex: string, faults: number): SwarmError {
    return new SwarmError('ERR_BANNED', `peer ${publicKeyHex.slice(0, 8)} banned after ${faults} verification faults`)
  }

  static NO_WAY_IN (): SwarmError {
    return new SwarmError('ERR_NO_WAY_IN', 'no bootstrap node, no static peer and no data port: there is no way to meet other agents')
  }

  static BAD_BUILD (build: string, why: string): SwarmError {
    return new SwarmError('ERR_BAD_BUILD', `build ${build.slice(0, 256)}: ${why}`)
  }

  static CANCELLED (): SwarmError {
    return new SwarmError('ERR_CANCELLED', 'request cancelled')
  }

  static OVER_BUDGET (budget: string, limit: number): SwarmError {
    return new SwarmError('ERR_PEER_OVER_BUDGET', `peer went past its ${budget} budget (${limit}): cut off`)
  }

  static CIPHER_FAILED (): SwarmError {
    return new SwarmError('ERR_CIPHER_FAILED', 'the record cipher failed to seal a record')
  }

  static DESTROYED (): SwarmError {
    return new SwarmError('ERR_DESTROYED', 'swarm is shut down')
  }
}
