/**
 * The worker's source, run with `eval: true`. A string rather than a file next
 * to this module because vitest runs the .ts sources and production the
 * compiled dist/: a `new URL('./x.js', import.meta.url)` worker would only
 * exist in one of them. Plain CommonJS, no imports of ours, so nothing to build.
 *
 * One synchronous read pass per file feeds both hashes; the file is opened
 * with O_NOFOLLOW (a symlink swapped in after the lstat fails with ELOOP) and
 * O_NONBLOCK (a FIFO swapped in cannot hang the thread), then fstat'ed to be
 * the very file that was listed. Its stat before and after the read must agree,
 * or the digests would describe no version of the file.
 *
 * Listing a dir (readdir, then lstat of each regular file) runs here too:
 * synchronous calls in a worker are about four times faster than 20 000
 * async lstats through libuv's pool, and a hung NFS distdir stalls a worker,
 * not the threads the rest of the agent's fs calls need.
 */
export const WORKER_SOURCE = `'use strict'
const { parentPort, workerData } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const fs = require('node:fs')
const { join } = require('node:path')
const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants
const stop = workerData.stop
const chunk = Buffer.allocUnsafe(workerData.chunk)
function fail (code, message) { const e = new Error(message); e.code = code; return e }
// Opens the file the job names, and only if it is still the regular file that was listed.
function openListed (job) {
  const fd = fs.openSync(job.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
  try {
    const st = fs.fstatSync(fd, { bigint: true })
    if (!st.isFile()) throw fail('ENOTFILE', 'not a regular file')
    if (job.dev !== undefined && (st.dev !== job.dev || st.ino !== job.ino)) throw fail('ECHANGED', 'replaced since it was listed')
    return { fd, st }
  } catch (err) {
    fs.closeSync(fd)
    throw err
  }
}
function hash (job) {
  let bytes = 0
  let fd = -1
  try {
    const opened = openListed(job)
    fd = opened.fd
    const before = opened.st
    const b2 = createHash('blake2b512')
    // blake2bOnly: a caller that compares with a BLAKE2B and needs no SHA512.
    // binpkg: a binary package, checked against its Packages stanza (MD5, SHA1) instead.
    const s512 = job.blake2bOnly || job.binpkg ? null : createHash('sha512')
    const md5 = job.binpkg ? createHash('md5') : null
    const sha1 = job.binpkg ? createHash('sha1') : null
    for (;;) {
      if (Atomics.load(stop, 0) !== 0) throw fail('ECANCELED', 'hashing was cancelled')
      const n = fs.readSync(fd, chunk, 0, chunk.length, bytes)
      if (n === 0) break
      const view = chunk.subarray(0, n)
      b2.update(view)
      s512?.update(view)
      md5?.update(view)
      sha1?.update(view)
      bytes += n
    }
    const after = fs.fstatSync(fd, { bigint: true })
    if (after.size !== before.size || after.mtimeNs !== before.mtimeNs || BigInt(bytes) !== after.size) throw fail('ECHANGED', 'changed while it was read')
    return { ok: true, bytes, blake2b: b2.digest(), sha512: s512?.digest(), md5: md5?.digest(), sha1: sha1?.digest(), stat: { dev: after.dev, ino: after.ino, size: after.size, mtimeNs: after.mtimeNs } }
  } catch (err) {
    return { ok: false, bytes, code: String(err.code || 'EIO'), message: String(err.message) }
  } finally {
    if (fd >= 0) try { fs.closeSync(fd) } catch {}
  }
}
function pieces (job) {
  let bytes = 0
  let fd = -1
  try {
    fd = openListed(job).fd
    const hashes = []
    const end = job.offset + job.length
    for (let start = job.offset; start < end; start += job.pieceSize) {
      const h = createHash('blake2b512')
      const last = Math.min(end, start + job.pieceSize)
      for (let pos = start; pos < last;) {
        if (Atomics.load(stop, 0) !== 0) throw fail('ECANCELED', 'hashing was cancelled')
        const n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, last - pos), pos)
        if (n === 0) throw fail('ECHANGED', 'ended at ' + pos)
        h.update(chunk.subarray(0, n))
        pos += n
        bytes += n
      }
      hashes.push(h.digest().subarray(0, 32))
    }
    return { ok: true, bytes, hashes }
  } catch (err) {
    return { ok: false, bytes, code: String(err.code || 'EIO'), message: String(err.message) }
  } finally {
    if (fd >= 0) try { fs.closeSync(fd) } catch {}
  }
}
function scan (job) {
  try {
    const files = []
    for (const d of fs.readdirSync(job.path, { withFileTypes: true })) {
      if (!d.isFile()) continue
      if (Atomics.load(stop, 0) !== 0) throw fail('ECANCELED', 'listing was cancelled')
      let st
      try { st = fs.lstatSync(join(job.path, d.name), { bigint: true }) } catch { continue }
      if (st.isFile()) files.push({ name: d.name, stat: { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs } })
    }
    return { ok: true, bytes: 0, files }
  } catch (err) {
    return { ok: false, bytes: 0, code: String(err.code || 'EIO'), message: String(err.message) }
  }
}
const jobs = { hash, scan, pieces }
parentPort.on('message', (job) => parentPort.postMessage({ id: job.id, ...jobs[job.kind](job) }))
`
