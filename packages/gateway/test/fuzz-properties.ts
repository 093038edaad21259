/**
 * The fuzzed properties of the gateway's HTTP handling: real requests, as
 * raw bytes on a TCP socket (no client library to tidy them), against a real
 * Gateway on 127.0.0.1 over a temp dir. Whatever the method, target,
 * headers, Range or bytes: never a 500 or a crash, never a byte of a file it
 * may not serve, always a well-formed response or a closed connection.
 *
 * The gateway is started on the first input and stopped by stopHttpFixture();
 * the shared runner (packages/protocol/test/runner.ts) runs these at any
 * scale and replays a saved failing input.
 */
import { createHash, randomBytes } from 'node:crypto'
import { deepStrictEqual, equal, fail, ok } from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { DistswarmError, type Logger } from '@distswarm/protocol'
import { contentHashPath, Gateway, LAYOUT_CONF, type GatewaySource, type ServedFile } from '../src/index.js'
import type { FuzzProperty } from '../../protocol/test/runner.js'

/** A request gets this long to be answered and closed: far above any answer here (the files are small, the disk local). */
const ANSWER_MS = 20_000
const SECRET = `TOP-SECRET-${randomBytes(8).toString('hex')}`

interface Held { name: string, data: Buffer, blake2b: string }
const held = (name: string, data: Buffer): Held => ({ name, data, blake2b: createHash('blake2b512').update(data).digest('hex') })

/** What the box holds (served from disk), … */
const LOCAL = [held('served-1.0.tar.gz', randomBytes(3000)), held('empty-1.0.tar.gz', Buffer.alloc(0)), held('big-1.0.tar.xz', randomBytes(70_000))]
/** …what a peer holds (fetched on demand, then served), … */
const REMOTE = [held('remote-1.0.tar.gz', randomBytes(5000))]
/** …what a peer advertises but cannot deliver: not found, wrong bytes, a fault without a code. */
const FAILING = { 'lost-1.0.tar.gz': () => new DistswarmError('ERR_NOT_FOUND', 'gone'), 'broken-1.0.tar.gz': () => new DistswarmError('ERR_VERIFY_FAILED', 'bad bytes'), 'throws-1.0.tar.gz': () => new Error('no code') } as const
/** …indexed at another size than the file now has, or indexed and gone from disk: neither may be served. */
const STALE = ['changed-1.0.tar.gz', 'vanished-1.0.tar.gz']
/** Bytes next to the served ones that no request may ever read. */
const SECRET_FILE = 'secret'
const SERVABLE = new Map([...LOCAL, ...REMOTE].map((f) => [f.blake2b.slice(0, 32), f]))
const PAGE = '<!doctype html><title>fuzz</title>'
const METRICS = 'distswarm_up 1\n'
const STATUS = { name: 'fuzz' }

interface Fixture { port: number, gateway: Gateway, dir: string, errors: string[] }
let fixture: Promise<Fixture> | null = null

/** A logger that keeps what the gateway reports as an error: a handler that failed (a 500, or a response cut). */
function errorKeeper (errors: string[]): Logger {
  const none = (): void => {}
  const self: Logger = { error: (event, fields) => { errors.push(`${event} ${JSON.stringify(fields)}`) }, warn: none, info: none, debug: none, child: () => self }
  return self
}

async function startFixture (): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-fuzz-'))
  const files = new Map<string, ServedFile>()
  for (const f of [...LOCAL, ...REMOTE]) {
    await writeFile(join(dir, f.name), f.data)
    files.set(f.name, { name: f.name, size: f.data.length, blake2b: f.blake2b, path: join(dir, f.name) })
  }
  await writeFile(join(dir, SECRET_FILE), SECRET)
  await writeFile(join(dir, STALE[0]!), 'twenty bytes, not 10')
  const stale = new Map(STALE.map((name) => [name, { name, size: 10, blake2b: createHash('blake2b512').update(name).digest('hex'), path: join(dir, name) }]))
  const local = new Map([...LOCAL.map((f) => files.get(f.name)!), ...stale.values()].flatMap((f) => [[f.name, f], [f.blake2b, f]] as const))
  const remote = new Map(REMOTE.map((f) => files.get(f.name)!).flatMap((f) => [[f.name, f], [f.blake2b, f]] as const))
  const lookup = (key: { name: string } | { blake2b: string }): string => 'name' in key ? key.name : key.blake2b
  const source: GatewaySource = {
    local: (key) => local.get(lookup(key)),
    held: (key) => remote.has(lookup(key)) || lookup(key) in FAILING,
    fetch: async (key) => {
      const k = lookup(key)
      const f = remote.get(k)
      if (f) return f
      throw k in FAILING ? FAILING[k as keyof typeof FAILING]() : new DistswarmError('ERR_NOT_FOUND', 'nobody')
    },
    status: () => STATUS
  }
  const errors: string[] = []
  const gateway = new Gateway({
    host: '127.0.0.1',
    port: 0,
    source,
    page: (req, res) => {
      if (req.url !== '/') return false
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(PAGE) })
      res.end(req.method === 'HEAD' ? undefined : PAGE)
      return true
    },
    metrics: { contentType: 'text/plain; version=0.0.4', render: () => METRICS },
    // Short, so that a head that never ends is answered within ANSWER_MS.
    headersTimeoutMs: 2000,
    logger: errorKeeper(errors)
  })
  await gateway.start()
  return { port: Number(new URL(gateway.url!).port), gateway, dir, errors }
}

/** The gateway the properties talk to, started on first use. */
export function httpFixture (): Promise<Fixture> {
  fixture ??= startFixture()
  return fixture
}

export async function stopHttpFixture (): Promise<void> {
  const f = await fixture
  fixture = null
  if (!f) return
  await f.gateway.stop()
  await rm(f.dir, { recursive: true, force: true })
}

/** Writes `request`, half-closes, and reads until the gateway closes; fails when it neither answers nor closes in time. */
async function exchange (port: number, request: Buffer): Promise<Buffer> {
  const socket = connect(port, '127.0.0.1')
  const chunks: Buffer[] = []
  socket.on('data', (d: Buffer) => chunks.push(d))
  const closed = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ANSWER_MS)
    socket.on('close', () => { clearTimeout(timer); resolve(true) })
    // A reset after a refusal is a closed connection too.
    socket.on('error', () => {})
  })
  socket.end(request)
  const done = await closed
  socket.destroy()
  if (!done) fail(`no answer and no close within ${ANSWER_MS} ms to ${JSON.stringify(request.toString('latin1').slice(0, 200))}`)
  return Buffer.concat(chunks)
}

interface Response { status: number, headers: Map<string, string>, body: Buffer }

const STATUS_LINE = /^HTTP\/1\.1 ([1-5]\d\d) [^\r\n]*$/
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+): ?([^\r\n]*)$/

/** The responses in `bytes`, in order: each head well-formed, each body as long as its content-length says (none for HEAD, 1xx, 204, 304). */
function parseResponses (bytes: Buffer, method: string): Response[] {
  const out: Response[] = []
  let at = 0
  while (at < bytes.length) {
    const end = bytes.indexOf('\r\n\r\n', at)
    ok(end !== -1, `a response head that never ends: ${JSON.stringify(bytes.subarray(at, at + 200).toString('latin1'))}`)
    const [line, ...lines] = bytes.subarray(at, end).toString('latin1').split('\r\n')
    const m = STATUS_LINE.exec(line!)
    ok(m, `not a status line: ${JSON.stringify(line)}`)
    const headers = new Map<string, string>()
    for (const h of lines) {
      const hm = HEADER_LINE.exec(h)
      ok(hm, `not a header line: ${JSON.stringify(h)}`)
      headers.set(hm[1]!.toLowerCase(), hm[2]!)
    }
    const status = Number(m[1])
    at = end + 4
    const length = headers.get('content-length')
    let body: Buffer = Buffer.alloc(0)
    if (method !== 'HEAD' && status >= 200 && status !== 204 && status !== 304) {
      if (headers.get('transfer-encoding') === 'chunked') {
        // Node's own answers (a 400 to an HTTP/1.1 request without Host) come chunked.
        const parts: Buffer[] = []
        for (;;) {
          const eol = bytes.indexOf('\r\n', at)
          const size = eol === -1 ? NaN : parseInt(bytes.subarray(at, eol).toString('latin1'), 16)
          ok(Number.isSafeInteger(size) && size >= 0, `a bad chunk size at ${at}`)
          parts.push(bytes.subarray(eol + 2, eol + 2 + size))
          ok(bytes.subarray(eol + 2 + size, eol + 4 + size).toString('latin1') === '\r\n', 'a chunk cut short')
          at = eol + 4 + size
          if (size === 0) break
        }
        out.push({ status, headers, body: Buffer.concat(parts) })
        continue
      } else if (length === undefined) {
        body = bytes.subarray(at)
      } else {
        ok(/^\d+$/.test(length), `content-length ${length}`)
        body = bytes.subarray(at, at + Number(length))
        equal(body.length, Number(length), `a body cut short: ${body.length} of ${length} bytes`)
      }
      at += body.length
    }
    out.push({ status, headers, body })
  }
  return out
}

/**
 * What a response may carry: a served file (whole, or the part its
 * Content-Range names), layout.conf, the metrics, the status document, the
 * page, or a short text; never the secret, never a 500.
 */
function checkResponse (r: Response, method: string, target: string, errors: readonly string[]): void {
  deepStrictEqual(errors, [], 'the gateway logged an error')
  ok(r.status !== 500, `500 for ${method} ${target}`)
  ok(!r.body.includes(SECRET), `the secret served for ${method} ${target}`)
  if (r.status === 502) ok(/broken|throws/.test(target) || /%/.test(target), `502 for ${target}, no failing fetch`)
  const type = r.headers.get('content-type') ?? ''
  if ((r.status === 200 || r.status === 206) && type === 'application/octet-stream') {
    const etag = /^"([0-9a-f]{32})"$/.exec(r.headers.get('etag') ?? '')?.[1]
    const file = etag === undefined ? undefined : SERVABLE.get(etag)
    ok(file, `file bytes with etag ${r.headers.get('etag')}, no servable file`)
    if (method === 'HEAD') return
    if (r.status === 200) {
      ok(r.body.equals(file.data), `200 with other bytes than ${file.name}`)
    } else {
      const cr = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(r.headers.get('content-range') ?? '')
      ok(cr, `206 with content-range ${r.headers.get('content-range')}`)
      const [start, end, size] = [Number(cr[1]), Number(cr[2]), Number(cr[3])]
      equal(size, file.data.length)
      ok(start <= end && end < size, `content-range ${cr[0]}`)
      ok(r.body.equals(file.data.subarray(start, end + 1)), `206 with other bytes than ${file.name} ${start}-${end}`)
    }
    return
  }
  if (method === 'HEAD' || r.body.length === 0) return
  const text = r.body.toString('utf8')
  const known = [LAYOUT_CONF, METRICS, PAGE, `${JSON.stringify(STATUS)}\n`]
  ok(known.includes(text) || (type === 'text/plain; charset=utf-8' && r.body.length < 300), `a ${r.status} body that is none of the gateway's: ${JSON.stringify(text.slice(0, 200))}`)
}

// --- arbitraries ---

const ALL_NAMES = [...LOCAL, ...REMOTE].map((f) => f.name).concat(Object.keys(FAILING), STALE, [SECRET_FILE, 'unknown-1.0.tar.gz', 'layout.conf'])
const percentEncode = (s: string, all: boolean): string => [...Buffer.from(s)].map((b) => all || b < 0x21 || b > 0x7e || fcPercent.has(b) ? `%${b.toString(16).padStart(2, '0')}` : String.fromCharCode(b)).join('')
const fcPercent = new Set([...'%?#/'].map((c) => c.charCodeAt(0)))
/** Path characters that parsers trip on, as bytes a raw request can carry. */
const urlChar = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('a', '0', '-', '.', '_', '~', '/', '%', '?', '#', '..', '%2e', '%2E', '%2f', '%2F', '%5c', '%00', '%0a', '%0d%0a', '%ff', '%e2%80%a8', '%', '%g0', '+', ';', '=', '&', '@', ':') },
  { weight: 1, arbitrary: fc.constantFrom(' ', '\t', '\\', '"', '<', '`', '{', 'é', '\u0000', '\u007f', '\u00ff') }
)
const digestOf = fc.constantFrom(...[...LOCAL, ...REMOTE].map((f) => f.blake2b), createHash('blake2b512').update('nothing').digest('hex'))
const target = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...ALL_NAMES).map((n) => `/distfiles/${n}`) },
  { weight: 3, arbitrary: fc.tuple(digestOf, fc.boolean(), fc.boolean()).map(([hex, upper, wrongDir]) => `/distfiles/${(upper ? contentHashPath(hex).toUpperCase() : contentHashPath(wrongDir ? hex.slice(2) + hex.slice(0, 2) : hex).split('/').slice(0, 2).join('/') + '/' + hex)}`) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...ALL_NAMES), fc.boolean()).map(([n, all]) => `/distfiles/${percentEncode(n, all)}`) },
  { weight: 2, arbitrary: fc.constantFrom('/distfiles/layout.conf', '/distfiles', '/distfiles/', '/metrics', '/', '/api/status', '/api/other', '//distfiles/served-1.0.tar.gz', 'http://localhost/distfiles/served-1.0.tar.gz', '*', 'localhost:80', '/distfiles/a/b/c/d', '/distfiles/../secret', '/distfiles/%2e%2e/secret', '/distfiles/..%2fsecret', '/distfiles/./served-1.0.tar.gz', '/distfiles/served-1.0.tar.gz/', '/distfiles//served-1.0.tar.gz', '/DISTFILES/served-1.0.tar.gz', '/distfiles/served-1.0.tar.gz%00', '/metrics/', '/metrics?x', '') },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom('/', '/distfiles/', '/api/'), fc.string({ unit: urlChar, maxLength: 16 })).map(([a, b]) => a + b) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('/distfiles/', '/'), fc.integer({ min: 1000, max: 1100 })).map(([a, n]) => a + 'a'.repeat(n)) }
).chain((t) => fc.option(fc.string({ unit: urlChar, maxLength: 8 }), { freq: 4 }).map((q) => q === null ? t : `${t}?${q}`))
const method = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('GET', 'GET', 'GET', 'HEAD') },
  { weight: 2, arbitrary: fc.constantFrom('POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', 'PATCH', 'get', 'PROPFIND', 'M-SEARCH') },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'ABCDEGHLOPSTUZ'), minLength: 1, maxLength: 10 }) }
)
/** Numbers near the files' sizes and at the edges of a safe integer. */
const offset = fc.oneof(fc.nat({ max: 80_000 }), fc.constantFrom(0, 1, 2999, 3000, 3001, 4999, 5000, 69_999, 70_000, 2 ** 53 - 1, 2 ** 53), fc.constantFrom('', '00', '-0', '99999999999999999999', '1e3', ' 1', '0x10'))
const range = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(offset, offset).map(([a, b]) => `bytes=${a}-${b}`) },
  { weight: 2, arbitrary: offset.map((a) => `bytes=${a}-`) },
  { weight: 2, arbitrary: offset.map((b) => `bytes=-${b}`) },
  { weight: 1, arbitrary: fc.array(fc.tuple(offset, offset).map(([a, b]) => `${a}-${b}`), { minLength: 2, maxLength: 4 }).map((r) => `bytes=${r.join(',')}`) },
  { weight: 1, arbitrary: fc.constantFrom('bytes=', 'bytes=-', 'bytes=--1', 'bytes=1-2-3', 'items=0-1', 'Bytes=0-1', ' bytes=0-1', 'bytes = 0-1', 'bytes=0-1,', '=', '', 'bytes=\t0-1', 'bytes=0-1 ') },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom('b', 'y', 't', 'e', 's', '=', '-', ',', '0', '1', '9', ' '), maxLength: 14 }) }
)
/** A header value: printable bytes, tab, obs-text; never CR or LF (the raw property injects those). */
const headerValue = fc.string({ unit: fc.oneof(fc.constantFrom(' ', '\t', '"', ',', ';', '=', '*', '\u0080', '\u00ff'), fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c))), maxLength: 24 })
const host = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('localhost', '127.0.0.1', '127.0.0.1:PORT', 'localhost:PORT', '[::1]:PORT', '[::1]') },
  { weight: 2, arbitrary: fc.constantFrom('evil.example', 'evil.example:PORT', 'localhost.evil.example', '', '[', '[::1', 'localhost.', 'a.localhost', '127.1', '0x7f.1', ':80', 'LOCALHOST') },
  { weight: 1, arbitrary: headerValue }
)
const date = fc.oneof(fc.constantFrom('Thu, 01 Jan 1970 00:00:00 GMT', 'Fri, 31 Dec 9999 23:59:59 GMT', 'yesterday', '', '0'), fc.date({ noInvalidDate: true }).map((d) => d.toUTCString()))
const headers = fc.record({
  host: fc.option(host, { freq: 8 }),
  range: fc.option(range, { freq: 2 }),
  ifRange: fc.option(fc.oneof(date, fc.constantFrom(...[...SERVABLE.keys()].map((k) => `"${k}"`)), headerValue), { freq: 4 }),
  ifModifiedSince: fc.option(date, { freq: 4 }),
  body: fc.option(fc.tuple(fc.boolean(), fc.uint8Array({ maxLength: 20 })), { freq: 6 }),
  extra: fc.array(fc.tuple(fc.string({ unit: fc.constantFrom(..."!#$%&'*+.^_`|~09AZaz-"), minLength: 1, maxLength: 12 }), headerValue), { maxLength: 4 })
})
const version = fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.1 ', 'http/1.1', 'HTTP/1.10')

interface HttpInput { method: string, target: string, version: string, headers: { host: string | null, range: string | null, ifRange: string | null, ifModifiedSince: string | null, body: [boolean, Uint8Array] | null, extra: Array<[string, string]> } }

/** The request's bytes: a request line and headers as given (latin1: one byte a character), a body when asked, always Connection: close. */
function requestBytes (input: HttpInput, port: number): Buffer {
  const h = input.headers
  const lines = [`${input.method} ${input.target} ${input.version}`]
  if (h.host !== null) lines.push(`Host: ${h.host.replaceAll('PORT', String(port))}`)
  if (h.range !== null) lines.push(`Range: ${h.range}`)
  if (h.ifRange !== null) lines.push(`If-Range: ${h.ifRange}`)
  if (h.ifModifiedSince !== null) lines.push(`If-Modified-Since: ${h.ifModifiedSince}`)
  for (const [k, v] of h.extra) lines.push(`${k}: ${v}`)
  const body = h.body === null ? Buffer.alloc(0) : Buffer.from(h.body[1])
  if (h.body !== null) lines.push(h.body[0] ? `Content-Length: ${body.length}` : 'Transfer-Encoding: chunked')
  lines.push('Connection: close')
  const payload = h.body === null ? Buffer.alloc(0) : h.body[0] ? body : Buffer.from(`${body.length.toString(16)}\r\n${body.toString('latin1')}\r\n0\r\n\r\n`, 'latin1')
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), payload])
}

type Edit = { kind: 'insert', at: number, bytes: string } | { kind: 'delete', at: number, length: number } | { kind: 'cut', at: number }
/** One request broken by edits, a well-formed request sent `pipelined` times on one connection, or bytes that were never a request. */
interface RawInput { request: HttpInput | null, edits: Edit[], pipelined: number, garbage: Uint8Array | null }

/** Edits that break a request in the ways parsers get wrong: stray CR, LF or NUL, cut heads, doubled lines, pipelining, raw garbage. */
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.oneof(fc.constantFrom('\r', '\n', '\r\n', '\0', '\r\n\r\n', ' ', ':', '\u00ff', 'GET / HTTP/1.1\r\n', 'Content-Length: 5\r\n', 'Transfer-Encoding: chunked\r\n', 'Host: evil.example\r\n', 'Range: bytes=0-0\r\n'), fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b).toString('latin1'))) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() })
)
const rawInput: fc.Arbitrary<RawInput> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.record({ method, target, version, headers }), fc.array(edit, { minLength: 1, maxLength: 4 })).map(([request, edits]) => ({ request, edits, pipelined: 1, garbage: null as Uint8Array | null })) },
  { weight: 2, arbitrary: fc.tuple(fc.record({ method, target, version: fc.constant('HTTP/1.1'), headers }), fc.integer({ min: 2, max: 4 })).map(([request, pipelined]) => ({ request, edits: [], pipelined, garbage: null })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((garbage) => ({ request: null, edits: [], pipelined: 0, garbage })) }
)

function applyEdits (bytes: Buffer, edits: readonly Edit[]): Buffer {
  let b = bytes
  for (const e of edits) {
    const at = b.length === 0 ? 0 : e.at % (b.length + 1)
    if (e.kind === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from(e.bytes, 'latin1'), b.subarray(at)])
    else if (e.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.length)])
    else b = b.subarray(0, at)
  }
  return b
}

/** Every fuzzed property of the gateway's HTTP handling; names are stable, as saved regressions refer to them. */
export const HTTP_PROPERTIES: readonly FuzzProperty[] = [
  {
    group: 'Gateway HTTP',
    name: 'answers any method, target, headers and Range with one well-formed response: no 500, only bytes it may serve',
    weight: 2,
    async: true,
    input: fc.record({ method, target, version, headers }),
    check: async (input: HttpInput) => {
      const f = await httpFixture()
      const bytes = await exchange(f.port, requestBytes(input, f.port))
      const responses = parseResponses(bytes, input.method)
      ok(responses.length <= 1, `${responses.length} responses to one request: ${JSON.stringify(bytes.toString("latin1").slice(0, 600))}`)
      for (const r of responses) checkResponse(r, input.method, input.target, f.errors)
      // An ordinary request for a file the box holds: the whole file, every time.
      const h = input.headers
      const plainGet = input.method === 'GET' && input.version === 'HTTP/1.1' && (h.host === 'localhost' || h.host === '127.0.0.1') && h.range === null && h.ifModifiedSince === null && h.body === null && h.extra.length === 0
      const file = LOCAL.find((x) => input.target === `/distfiles/${x.name}`)
      if (plainGet && file) {
        equal(responses[0]?.status, 200, `GET ${input.target}`)
        ok(responses[0]!.body.equals(file.data), `GET ${input.target}: other bytes`)
      }
    }
  },
  {
    group: 'Gateway HTTP',
    name: 'survives malformed request bytes on a socket (stray CR, LF, NUL, cut heads, pipelining, garbage): each answer well-formed, or the connection closed',
    weight: 2,
    async: true,
    input: rawInput,
    check: async ({ request, edits, pipelined, garbage }: RawInput) => {
      const f = await httpFixture()
      const one = request === null ? Buffer.from(garbage ?? []) : requestBytes(request, f.port)
      // Pipelined requests keep the connection open until the last one: Connection: close on that one only.
      const bytes = pipelined > 1
        ? Buffer.concat([...Array.from({ length: pipelined - 1 }, () => Buffer.from(one.toString('latin1').replace('Connection: close\r\n', ''), 'latin1')), one])
        : applyEdits(one, edits)
      const answer = await exchange(f.port, bytes)
      deepStrictEqual(f.errors, [], 'the gateway logged an error')
      ok(!answer.includes(SECRET), 'the secret served')
      ok(!answer.includes('HTTP/1.1 500'), `a 500 for ${JSON.stringify(bytes.toString('latin1').slice(0, 300))}`)
      if (answer.length > 0) ok(STATUS_LINE.test(answer.subarray(0, answer.indexOf('\r\n')).toString('latin1')), `not a response: ${JSON.stringify(answer.subarray(0, 100).toString('latin1'))}`)
      // Well-formed pipelined requests (no HEAD among them, whose answers carry no body): one well-formed answer each.
      if (pipelined > 1 && request!.method !== 'HEAD') {
        const responses = parseResponses(answer, request!.method)
        ok(responses.length <= pipelined, `${responses.length} responses to ${pipelined} requests`)
        for (const r of responses) checkResponse(r, request!.method, request!.target, f.errors)
      }
    }
  }
]
