import { DistswarmError } from '@distswarm/protocol'

export class GatewayError extends DistswarmError {
  /** An option of `new Gateway()` out of range or of the wrong type. */
  static INVALID_OPTION (option: string, why: string): GatewayError {
    return new GatewayError('ERR_INVALID_OPTION', `invalid gateway option ${option}: ${why}`)
  }

  static LISTEN (address: string, cause: unknown): GatewayError {
    return new GatewayError('ERR_HTTP_LISTEN', `cannot serve HTTP on ${address}: ${(cause as Error).message}`, { cause })
  }
}
