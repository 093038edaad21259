/**
 * Loaded into an agent process with `node --import` (NODE_OPTIONS) when the
 * test cannot mount a small tmpfs (not root): makes the directory
 * DISTSWARM_TEST_FULL_DIR behave like a filesystem of
 * DISTSWARM_TEST_FULL_BYTES bytes. A write that would take the regular files
 * under it past that size fails as write(2) does on a full disk: an
 * ENOSPC errno error, nothing written. Removing files frees the space again.
 *
 * The injection sits at the last JavaScript step before the kernel (the
 * write calls of node:fs and of fs.promises' FileHandle), so everything the
 * product does above it, from the store to the CLI, runs unchanged.
 */
import fs from 'node:fs'
import { open } from 'node:fs/promises'
import { join, sep } from 'node:path'

const dir = process.env.DISTSWARM_TEST_FULL_DIR
const capacity = Number(process.env.DISTSWARM_TEST_FULL_BYTES)

function usedBytes (path) {
  let total = 0
  for (const e of fs.readdirSync(path, { withFileTypes: true })) {
    const p = join(path, e.name)
    if (e.isDirectory()) total += usedBytes(p)
    else if (e.isFile()) total += fs.statSync(p).size
  }
  return total
}

/** Throws ENOSPC, shaped as libuv's errors are, when `length` more bytes on `fd` would not fit. */
function checkSpace (fd, length) {
  let path
  try {
    path = fs.readlinkSync(`/proc/self/fd/${fd}`)
  } catch {
    return
  }
  if (!path.startsWith(dir + sep)) return
  if (usedBytes(dir) + length <= capacity) return
  const err = new Error('ENOSPC: no space left on device, write')
  Object.assign(err, { errno: -28, code: 'ENOSPC', syscall: 'write' })
  throw err
}

const byteLength = (data) => typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength
const totalLength = (buffers) => buffers.reduce((n, b) => n + b.byteLength, 0)
// write(fd, buffer, offset, length, …) or write(fd, string, …): the bytes it would write
const writeLength = (data, offset, length) =>
  typeof data !== 'string' && typeof length === 'number' ? length : byteLength(data) - (typeof offset === 'number' && typeof data !== 'string' ? offset : 0)

if (dir && Number.isSafeInteger(capacity)) {
  const probe = await open('/dev/null')
  const FileHandle = Object.getPrototypeOf(probe)
  await probe.close()
  const { write, writev } = FileHandle
  FileHandle.write = function (data, offset, length, ...rest) {
    try {
      checkSpace(this.fd, writeLength(data, offset, length))
    } catch (err) {
      return Promise.reject(err)
    }
    return write.call(this, data, offset, length, ...rest)
  }
  FileHandle.writev = function (buffers, ...rest) {
    try {
      checkSpace(this.fd, totalLength(buffers))
    } catch (err) {
      return Promise.reject(err)
    }
    return writev.call(this, buffers, ...rest)
  }

  const { write: fsWrite, writev: fsWritev, writeSync } = fs
  const callbackOf = (args) => args.findLast((a) => typeof a === 'function')
  fs.write = function (fd, data, offset, length, ...rest) {
    try {
      checkSpace(fd, writeLength(data, offset, length))
    } catch (err) {
      process.nextTick(callbackOf([offset, length, ...rest]), err)
      return
    }
    return fsWrite.call(this, fd, data, offset, length, ...rest)
  }
  fs.writev = function (fd, buffers, ...rest) {
    try {
      checkSpace(fd, totalLength(buffers))
    } catch (err) {
      process.nextTick(callbackOf(rest), err)
      return
    }
    return fsWritev.call(this, fd, buffers, ...rest)
  }
  fs.writeSync = function (fd, data, offset, length, ...rest) {
    checkSpace(fd, writeLength(data, offset, length))
    return writeSync.call(this, fd, data, offset, length, ...rest)
  }
}
