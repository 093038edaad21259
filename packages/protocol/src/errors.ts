import type { Code } from './codes.js'

/**
 * Base of every distswarm error: `code` is stable and is what callers and
 * tests branch on; `message` is for people and may change.
 */
export class DistswarmError extends Error {
  readonly code: Code

  constructor (code: Code, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

export class ProtocolError extends DistswarmError {
  static FRAME_TOO_LARGE (size: number, max: number): ProtocolError {
    return new ProtocolError('ERR_FRAME_TOO_LARGE', `frame of ${size} bytes exceeds the limit of ${max} bytes`)
  }

  static DECODE_FAILED (cause: unknown): ProtocolError {
    const why = cause instanceof Error ? cause.message : String(cause)
    return new ProtocolError('ERR_DECODE', `malformed message: ${why}`, { cause })
  }

  static BAD_MESSAGE (type: string, why: string): ProtocolError {
    return new ProtocolError('ERR_BAD_MESSAGE', `invalid ${type} message: ${why}`)
  }

  static UNKNOWN_TYPE (): ProtocolError {
    return new ProtocolError('ERR_UNKNOWN_TYPE', 'message of unknown type')
  }

  static INVALID_NAME (name: string, why: string): ProtocolError {
    return new ProtocolError('ERR_INVALID_NAME', `invalid file name ${JSON.stringify(name)}: ${why}`)
  }

  static INVALID_DIGEST (what: string): ProtocolError {
    return new ProtocolError('ERR_INVALID_DIGEST', `invalid digest: ${what}`)
  }
}
