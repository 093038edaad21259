/**
 * Answers shared by the gateway's routes: a verified file from disk (Range,
 * If-Modified-Since, HEAD), short text answers, JSON.
 */
import type { FileHandle } from 'node:fs/promises'
import { open } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import type { Logger } from '@distswarm/protocol'
import { parseRange } from './range.js'

/** A file on this box the gateway may serve. */
export interface ServedFile {
  /** absolute path of a verified file (cache dir, DISTDIR, PKGDIR or build cache) */
  path: string
  /** its size as indexed: a file found at another size is not served */
  size: number
  name: string
  /** BLAKE2B, 128 lowercase hex digits */
  blake2b: string
}

/** If-Modified-Since: true when the resource (its time, whole seconds) is no newer than the client's copy. */
export function notModified (req: IncomingMessage, mtimeMs: number): boolean {
  const ims = req.headers['if-modified-since']
  if (ims === undefined) return false
  const t = Date.parse(ims)
  return !Number.isNaN(t) && mtimeMs <= t
}

export function plain (res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  const body = `${text}\n`
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

export function json (res: ServerResponse, req: IncomingMessage, doc: unknown): void {
  const body = `${JSON.stringify(doc)}\n`
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
  res.end(req.method === 'HEAD' ? undefined : body)
}

/**
 * Serves a file from disk: Range, If-Modified-Since, HEAD. False (nothing
 * sent) when it is gone or no longer the size it was indexed at.
 */
export async function serveFile (req: IncomingMessage, res: ServerResponse, file: ServedFile, log: Logger): Promise<boolean> {
  let fh: FileHandle
  try {
    fh = await open(file.path, 'r')
  } catch (err) {
    log.debug('http.open-failed', { path: file.path, code: (err as NodeJS.ErrnoException).code })
    return false
  }
  try {
    const st = await fh.stat()
    if (!st.isFile() || st.size !== file.size) {
      log.warn('http.file-changed', { path: file.path, indexed: file.size, now: st.size })
      return false
    }
    const mtime = Math.floor(st.mtimeMs / 1000) * 1000
    res.setHeader('last-modified', new Date(mtime).toUTCString())
    res.setHeader('accept-ranges', 'bytes')
    res.setHeader('content-type', 'application/octet-stream')
    res.setHeader('etag', `"${file.blake2b.slice(0, 32)}"`)
    const ifRange = req.headers['if-range']
    const rangeHeader = ifRange === undefined || ifRange === res.getHeader('last-modified') || ifRange === res.getHeader('etag') ? req.headers.range : undefined
    if (rangeHeader === undefined && notModified(req, mtime)) {
      res.writeHead(304).end()
      return true
    }
    const range = parseRange(rangeHeader, st.size)
    if (range.kind === 'unsatisfiable') {
      res.removeHeader('content-type')
      plain(res, 416, 'range not satisfiable', { 'content-range': `bytes */${st.size}` })
      return true
    }
    const [start, end] = range.kind === 'part' ? [range.start, range.end] : [0, st.size - 1]
    const length = end - start + 1
    if (range.kind === 'part') res.setHeader('content-range', `bytes ${start}-${end}/${st.size}`)
    res.writeHead(range.kind === 'part' ? 206 : 200, { 'content-length': length })
    if (req.method === 'HEAD' || length === 0) {
      res.end()
      return true
    }
    const stream = fh.createReadStream({ start, end, autoClose: false, highWaterMark: 256 * 1024 })
    await streamTo(stream, req, res, (err) => { log.debug('http.response-cut', { name: file.name, code: err.code }) })
    return true
  } finally {
    await fh.close()
  }
}

/**
 * Streams `from` into `res` until it is read whole, fails, or the client is
 * gone, then stops it; the caller closes the file. Not stream.pipeline: under
 * fuzzed requests some pipelines over a response never settled (46 of 3000, a
 * response that never emitted 'close', we think one queued behind a pipelined
 * request), and their files were left to the garbage collector.
 * A client that goes away ends its response only: the file and any fetch are untouched.
 */
async function streamTo (from: Readable, req: IncomingMessage, res: ServerResponse, onCut: (err: NodeJS.ErrnoException) => void): Promise<void> {
  const socket = req.socket
  if (socket.destroyed) return void from.destroy()
  let settle = (): void => {}
  const settled = new Promise<void>((resolve) => { settle = resolve })
  const cut = (err: NodeJS.ErrnoException): void => { onCut(err); settle() }
  const gone = (): void => { cut(Object.assign(new Error('client gone'), { code: 'ECONNRESET' })) }
  from.once('end', settle).once('error', cut)
  res.once('close', gone).once('error', cut)
  socket.once('close', gone)
  from.pipe(res)
  try {
    await settled
  } finally {
    socket.off('close', gone)
    res.off('close', gone).off('error', cut)
    from.unpipe(res)
    from.destroy()
  }
}
