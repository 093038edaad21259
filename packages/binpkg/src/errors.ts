import { DistswarmError } from '@distswarm/protocol'

export class BinpkgError extends DistswarmError {
  static INDEX_INVALID (why: string): BinpkgError {
    return new BinpkgError('ERR_PACKAGES_INVALID', `Packages index refused: ${why}`)
  }

  static VALUE (key: string, why: string): BinpkgError {
    return new BinpkgError('ERR_PACKAGES_VALUE', `Packages key ${JSON.stringify(key.slice(0, 64))}: ${why}`)
  }

  static OPTION (option: string, why: string): BinpkgError {
    return new BinpkgError('ERR_INVALID_OPTION', `${option}: ${why}`)
  }

  static BAD_BUILD (cpv: string, why: string): BinpkgError {
    return new BinpkgError('ERR_BAD_BUILD', `${cpv.slice(0, 256)}: ${why}`)
  }
}
