import { DistswarmError } from '@distswarm/protocol'

export class StatusPageError extends DistswarmError {
  static INVALID_OPTION (option: string, why: string): StatusPageError {
    return new StatusPageError('ERR_INVALID_OPTION', `invalid option ${option}: ${why}`)
  }
}
