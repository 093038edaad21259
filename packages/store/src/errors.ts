import { DistswarmError } from '@distswarm/protocol'

export class StoreError extends DistswarmError {
  static VERIFY_FAILED (name: string, what: string): StoreError {
    return new StoreError('ERR_VERIFY_FAILED', `${name}: ${what}; the download was discarded`)
  }

  static SIZE_EXCEEDED (name: string, size: number): StoreError {
    return new StoreError('ERR_VERIFY_FAILED', `${name}: more than the expected ${size} bytes arrived; the download was discarded`)
  }

  static NAME_TAKEN (name: string, dir: string): StoreError {
    return new StoreError('ERR_NAME_TAKEN', `${name}: a different file of that name is already in ${dir}; it is left as it is`)
  }

  static BUSY (name: string): StoreError {
    return new StoreError('ERR_DOWNLOAD_BUSY', `${name}: a download of this file is already in progress`)
  }

  static CLOSED (name: string): StoreError {
    return new StoreError('ERR_DOWNLOAD_CLOSED', `${name}: the download was already committed or aborted`)
  }

  static DISK_FULL (name: string, dir: string, cause: unknown): StoreError {
    return new StoreError('ERR_DISK_FULL', `${name}: no space left on the device of ${dir}; nothing was published`, { cause })
  }

  static GAP (name: string, offset: number, size: number): StoreError {
    return new StoreError('ERR_DOWNLOAD_GAP', `${name}: a write at ${offset} would leave a gap after the ${size} bytes written`)
  }

  static READ_FAILED (why: string): StoreError {
    return new StoreError('ERR_READ_FAILED', `reading the download back to hash it failed: ${why}`)
  }

  static INVALID_OPTION (option: string, why: string): StoreError {
    return new StoreError('ERR_INVALID_OPTION', `${option}: ${why}`)
  }

  static STORE_CLOSED (): StoreError {
    return new StoreError('ERR_STORE_CLOSED', 'the store is closed')
  }
}
