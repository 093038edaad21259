/**
 * The gateway's HTTP layer against a real source over a temp dir (a file
 * "held by a peer" is copied in when fetched): routing, the mirror's
 * answers, and every kind of bad input. With real agents: test/e2e/gateway.test.ts.
 */
import { createHash } from 'node:crypto'
import { copyFile, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it, onTestFinished } from 'vitest'
import { DistswarmError } from '@distswarm/protocol'
import { contentHashPath, Gateway, GatewayError, LAYOUT_CONF, parseRange, type GatewayInit, type GatewaySource, type ServedFile } from '../src/index.js'
import { get, raw } from './raw.js'

const blake2b = (d: Buffer): string => createHash('blake2b512').update(d).digest('hex')

interface Fixture {
  url: string
  gateway: Gateway
  dir: string
  remoteDir: string
  /** adds a file this box holds */
  local: (name: string, data: Buffer) => Promise<ServedFile>
  /** adds a file only a "peer" holds: fetched (copied into dir) on demand */
  remote: (name: string, data: Buffer) => Promise<string>
  fetches: () => number
  /** resolves the pending fetches (they wait until this is called when `gate` is set) */
  release: () => void
}

async function fixture (init: Partial<GatewayInit> & { gate?: boolean, failFetch?: boolean } = {}): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-local-'))
  const remoteDir = await mkdtemp(join(tmpdir(), 'gw-remote-'))
  onTestFinished(async () => { await rm(dir, { recursive: true, force: true }); await rm(remoteDir, { recursive: true, force: true }) })
  const held = new Map<string, ServedFile>()
  const peers = new Map<string, { name: string, size: number, blake2b: string }>()
  let fetchCount = 0
  let open: () => void = () => {}
  let gate = init.gate === true ? new Promise<void>((resolve) => { open = resolve }) : Promise.resolve()
  const find = <T extends { name: string, blake2b: string }>(m: Map<string, T>, key: { blake2b: string } | { name: string }): T | undefined =>
    'blake2b' in key ? m.get(key.blake2b) : [...m.values()].find((f) => f.name === key.name)
  const source: GatewaySource = {
    local: (key) => find(held, key),
    held: (key) => find(peers, key) !== undefined,
    fetch: async (key) => {
      const n = ++fetchCount
      const r = find(peers, key)
      if (!r) throw new DistswarmError('ERR_NOT_FOUND', 'nobody')
      await gate
      if (init.failFetch === true) throw new DistswarmError('ERR_VERIFY_FAILED', 'bad bytes')
      const path = join(dir, r.name)
      // published whole or not at all, as the store does
      await copyFile(join(remoteDir, r.name), `${path}.${n}.tmp`)
      await rename(`${path}.${n}.tmp`, path)
      const f = { ...r, path }
      held.set(r.blake2b, f)
      return f
    },
    status: () => ({ name: 'fixture' })
  }
  const { gate: _g, failFetch: _f, ...rest } = init
  const gateway = new Gateway({ host: '127.0.0.1', port: 0, source, ...rest })
  await gateway.start()
  onTestFinished(() => gateway.stop())
  return {
    url: gateway.url!,
    gateway,
    dir,
    remoteDir,
    local: async (name, data) => {
      const path = join(dir, name)
      await writeFile(path, data)
      const f = { name, size: data.length, blake2b: blake2b(data), path }
      held.set(f.blake2b, f)
      return f
    },
    // The peer's copy is on disk before the gateway can learn of it.
    remote: async (name, data) => {
      const f = { name, size: data.length, blake2b: blake2b(data) }
      await writeFile(join(remoteDir, name), data)
      peers.set(f.blake2b, f)
      return f.blake2b
    },
    fetches: () => fetchCount,
    release: () => { open(); gate = Promise.resolve() }
  }
}


describe('Gateway options', () => {
  const source: GatewaySource = { local: () => undefined, held: () => false, fetch: async () => { throw new Error('no') }, status: () => ({}) }
  it.each([
    ['source', { source: {} }],
    ['port', { source, port: 70000 }],
    ['allow', { source, allow: ['not-an-ip'] }],
    ['allow', { source, allow: ['10.0.0.0/33'] }],
    ['maxConnections', { source, maxConnections: 0 }],
    ['page', { source, page: 'x' }]
  ])('refuses a bad %s with ERR_INVALID_OPTION naming it', (option, init) => {
    const err = (() => { try { return new Gateway(init as unknown as GatewayInit) } catch (e) { return e } })()
    expect(err).toBeInstanceOf(GatewayError)
    expect((err as GatewayError).code).toBe('ERR_INVALID_OPTION')
    expect((err as GatewayError).message).toContain(option)
  })

  it('start and stop are idempotent; a taken port is ERR_HTTP_LISTEN', async () => {
    const g = new Gateway({ source, port: 0 })
    await Promise.all([g.start(), g.start()])
    const port = Number(new URL(g.url!).port)
    const other = new Gateway({ source, port })
    const err = await other.start().catch((e: unknown) => e)
    expect((err as GatewayError).code).toBe('ERR_HTTP_LISTEN')
    await other.stop()
    await g.stop()
    await g.stop()
    expect(g.url).toBeNull()
  })
})

describe('layout', () => {
  it('cuts the digest as Portage does for content-hash BLAKE2B 8:16', () => {
    const hex = 'ab' + 'cd'.repeat(63)
    expect(contentHashPath(hex)).toBe(`ab/cdcd/${hex}`)
  })

  it('parses Range as RFC 9110 asks', () => {
    expect(parseRange(undefined, 10)).toEqual({ kind: 'whole' })
    expect(parseRange('bytes=2-4', 10)).toEqual({ kind: 'part', start: 2, end: 4 })
    expect(parseRange('bytes=2-', 10)).toEqual({ kind: 'part', start: 2, end: 9 })
    expect(parseRange('bytes=-3', 10)).toEqual({ kind: 'part', start: 7, end: 9 })
    expect(parseRange('bytes=5-100', 10)).toEqual({ kind: 'part', start: 5, end: 9 })
    expect(parseRange('items=1-2', 10)).toEqual({ kind: 'whole' })
    expect(parseRange('bytes=0-1,4-5', 10)).toEqual({ kind: 'whole' })
    for (const bad of ['bytes=10-', 'bytes=4-2', 'bytes=-0', 'bytes=x-1', 'bytes=-', 'bytes=1-2-3', 'garbage', 'bytes=99999999999999999999-']) {
      expect(parseRange(bad, 10), bad).toEqual({ kind: 'unsatisfiable' })
    }
  })
})

describe('Gateway /distfiles/', () => {
  it('serves layout.conf, a local file by content-hash path and by name, with Range, HEAD and If-Modified-Since', async () => {
    const fx = await fixture()
    const data = Buffer.from('hello distfile\n'.repeat(1000))
    const f = await fx.local('hello-1.0.tar.gz', data)

    const layout = await fetch(`${fx.url}/distfiles/layout.conf`)
    expect([layout.status, await layout.text()]).toEqual([200, LAYOUT_CONF])

    for (const path of [contentHashPath(f.blake2b), 'hello-1.0.tar.gz', contentHashPath(f.blake2b).toUpperCase()]) {
      const r = await fetch(`${fx.url}/distfiles/${path}`)
      expect(r.status).toBe(200)
      expect(r.headers.get('content-length')).toBe(String(data.length))
      expect(Buffer.from(await r.arrayBuffer()).equals(data)).toBe(true)
    }
    const head = await fetch(`${fx.url}/distfiles/hello-1.0.tar.gz`, { method: 'HEAD' })
    expect([head.status, head.headers.get('content-length'), head.headers.get('accept-ranges'), await head.text()]).toEqual([200, String(data.length), 'bytes', ''])
    const lastModified = head.headers.get('last-modified')!
    expect(Date.parse(lastModified)).toBe(Math.floor((await stat(f.path)).mtimeMs / 1000) * 1000)

    const part = await fetch(`${fx.url}/distfiles/hello-1.0.tar.gz`, { headers: { range: 'bytes=100-199' } })
    expect([part.status, part.headers.get('content-range'), part.headers.get('content-length')]).toEqual([206, `bytes 100-199/${data.length}`, '100'])
    expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(100, 200))).toBe(true)
    const suffix = await fetch(`${fx.url}/distfiles/hello-1.0.tar.gz`, { headers: { range: 'bytes=-10' } })
    expect(Buffer.from(await suffix.arrayBuffer()).equals(data.subarray(-10))).toBe(true)

    for (const range of [`bytes=${data.length}-`, 'bytes=5-2', 'bytes=abc', 'bytes=-0']) {
      const r = await fetch(`${fx.url}/distfiles/hello-1.0.tar.gz`, { headers: { range } })
      expect([r.status, r.headers.get('content-range')], range).toEqual([416, `bytes */${data.length}`])
    }

    const same = await fetch(`${fx.url}/distfiles/hello-1.0.tar.gz`, { headers: { 'if-modified-since': lastModified } })
    expect([same.status, await same.text()]).toEqual([304, ''])
    const older = await fetch(`${fx.url}/distfiles/hello-1.0.tar.gz`, { headers: { 'if-modified-since': new Date(Date.parse(lastModified) - 1000).toUTCString() } })
    expect(older.status).toBe(200)
    await older.arrayBuffer()
  })

  it('fetches a file only a peer holds, then serves it locally; an unknown one is a 404 without a fetch', async () => {
    const fx = await fixture()
    const data = Buffer.alloc(300_000, 7)
    const hex = await fx.remote('remote-2.0.tar.xz', data)
    const r = await fetch(`${fx.url}/distfiles/${contentHashPath(hex)}`)
    expect(r.status).toBe(200)
    expect(Buffer.from(await r.arrayBuffer()).equals(data)).toBe(true)
    expect(fx.fetches()).toBe(1)
    const again = await fetch(`${fx.url}/distfiles/remote-2.0.tar.xz`)
    expect(Buffer.from(await again.arrayBuffer()).equals(data)).toBe(true)
    expect(fx.fetches()).toBe(1)

    const unknown = await fetch(`${fx.url}/distfiles/${contentHashPath('0'.repeat(128))}`)
    expect(unknown.status).toBe(404)
    expect((await fetch(`${fx.url}/distfiles/nobody-1.0.tar.gz`)).status).toBe(404)
    expect(fx.fetches()).toBe(1)
  })

  it('shares one fetch among concurrent requests, and a failed fetch is a 502 with no body bytes of the file', async () => {
    const fx = await fixture({ gate: true })
    const data = Buffer.alloc(100_000, 3)
    const hex = await fx.remote('shared-1.0.tar.xz', data)
    const answers = Array.from({ length: 10 }, async (_, i) => fetch(`${fx.url}/distfiles/${i % 2 === 0 ? contentHashPath(hex) : 'shared-1.0.tar.xz'}`))
    await sleep(200)
    fx.release()
    const bodies = await Promise.all((await Promise.all(answers)).map(async (r) => [r.status, Buffer.from(await r.arrayBuffer()).equals(data)]))
    expect(bodies).toEqual(Array.from({ length: 10 }, () => [200, true]))
    // one per key form: by digest and by name (the agent itself shares those two in one download)
    expect(fx.fetches()).toBe(2)

    const failing = await fixture({ failFetch: true })
    const bad = await failing.remote('bad-1.0.tar.xz', data)
    const r = await fetch(`${failing.url}/distfiles/${contentHashPath(bad)}`)
    expect(r.status).toBe(502)
    expect((await r.text()).length).toBeLessThan(200)
  })

  it('a fetch that outlasts the header and idle timeouts still gets its answer', async () => {
    const fx = await fixture({ gate: true, headersTimeoutMs: 300, idleTimeoutMs: 300 })
    const data = Buffer.alloc(50_000, 5)
    const hex = await fx.remote('slow-1.0.tar.xz', data)
    const pending = fetch(`${fx.url}/distfiles/${contentHashPath(hex)}`)
    // several of either timeout, and of the server's checks of them
    await sleep(1500)
    fx.release()
    const r = await pending
    expect(r.status).toBe(200)
    expect(Buffer.from(await r.arrayBuffer()).equals(data)).toBe(true)
  })

  it('a client that disconnects while its file is fetched does not stop the fetch: the file is published', async () => {
    const fx = await fixture({ gate: true })
    const data = Buffer.alloc(200_000, 9)
    const hex = await fx.remote('left-1.0.tar.xz', data)
    const controller = new AbortController()
    const pending = fetch(`${fx.url}/distfiles/${contentHashPath(hex)}`, { signal: controller.signal }).catch((e: unknown) => e)
    await sleep(100)
    controller.abort()
    await pending
    fx.release()
    await (async () => { for (let i = 0; i < 100 && !(await readdir(fx.dir)).includes('left-1.0.tar.xz'); i++) await sleep(50) })()
    expect((await readdir(fx.dir))).toContain('left-1.0.tar.xz')
    // and the next caller is served from it, without another fetch
    const r = await fetch(`${fx.url}/distfiles/left-1.0.tar.xz`)
    expect(Buffer.from(await r.arrayBuffer()).equals(data)).toBe(true)
    expect(fx.fetches()).toBe(1)
  })

  it('a client that disconnects mid-body leaves the server serving, and the file whole', async () => {
    const fx = await fixture()
    const data = Buffer.alloc(32 * 1024 * 1024, 1)
    await fx.local('big-1.0.tar.xz', data)
    const { port } = new URL(fx.url)
    const socket = connect(Number(port), '127.0.0.1')
    socket.write(get('/distfiles/big-1.0.tar.xz'))
    let got = 0
    await new Promise<void>((resolve) => socket.on('data', (d: Buffer) => { got += d.length; if (got > 1024 * 1024) { socket.destroy(); resolve() } }))
    expect(got).toBeLessThan(data.length)
    const r = await fetch(`${fx.url}/distfiles/big-1.0.tar.xz`, { headers: { range: 'bytes=-4' } })
    expect(r.status).toBe(206)
    await r.arrayBuffer()
    expect((await stat(join(fx.dir, 'big-1.0.tar.xz'))).size).toBe(data.length)
  })
})

describe('Gateway bad input', () => {
  it('refuses path traversal in every form without touching the disk', async () => {
    const fx = await fixture()
    await fx.local('ok-1.0.tar.gz', Buffer.from('ok'))
    await writeFile(join(fx.remoteDir, 'secret'), 'secret')
    const paths = [
      '/distfiles/../../etc/passwd',
      '/distfiles/..',
      '/distfiles/%2e%2e/%2e%2e/etc/passwd',
      '/distfiles/%2E%2E',
      '/distfiles/..%2f..%2fetc%2fpasswd',
      '/distfiles/%2fetc%2fpasswd',
      '/distfiles/..%5c..%5cetc',
      '/distfiles//etc/passwd',
      '/distfiles/ab/cdef/..%2f..%2fsecret',
      '/distfiles/ok-1.0.tar.gz%00.txt',
      '/distfiles/%00',
      '/distfiles/%zz',
      `/distfiles/${fx.remoteDir}/secret`,
      '//etc/passwd',
      'http://evil/distfiles/ok-1.0.tar.gz',
      '/distfiles/.hidden'
    ]
    for (const path of paths) {
      const r = await raw(fx.url, get(path))
      expect(r.status, path).toBe(400)
      expect(r.text, path).not.toContain('secret')
    }
    // A raw NUL in the request line is refused by the parser itself.
    expect((await raw(fx.url, Buffer.from('GET /distfiles/ok\0 HTTP/1.1\r\nHost: localhost\r\n\r\n'))).status).toBe(400)
    expect((await raw(fx.url, get('/distfiles/ok-1.0.tar.gz'))).status).toBe(200)
    expect((await readdir(fx.dir)).sort()).toEqual(['ok-1.0.tar.gz'])
  })

  it('refuses a digest that is not hex, of the wrong length, or under the wrong directories', async () => {
    const fx = await fixture()
    const hex = 'ab' + 'cd'.repeat(63)
    for (const path of [`ab/cdcd/${hex.slice(0, 127)}`, `ab/cdcd/${hex}0`, `ab/cdcd/${'g'.repeat(128)}`, `ff/cdcd/${hex}`, `ab/0000/${hex}`, `ab/${hex}`, `ab/cdcd/x/${hex}`]) {
      expect((await fetch(`${fx.url}/distfiles/${path}`)).status, path).toBe(400)
    }
  })

  it('answers 405 to other methods, 414 to a long URL, 431 to long headers', async () => {
    const fx = await fixture()
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
      const r = await fetch(`${fx.url}/distfiles/x-1.0.tar.gz`, { method })
      expect([r.status, r.headers.get('allow')], method).toEqual([405, 'GET, HEAD'])
    }
    expect((await fetch(`${fx.url}/distfiles/${'a'.repeat(2000)}`)).status).toBe(414)
    expect((await raw(fx.url, `GET /distfiles/x HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`)).status).toBe(431)
  })

  it('refuses a Host header that names another site (DNS rebinding) with 403; IP literals, localhost and this box pass', async () => {
    const fx = await fixture()
    const get = async (host: string): Promise<number> => (await raw(fx.url, `GET /distfiles/layout.conf HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)).status
    const port = new URL(fx.url).port
    for (const evil of ['evil.example', `evil.example:${port}`, 'attacker.test.', `${hostname()}.evil.example:1`.replace(/^[^.]*/, 'x'), '']) {
      expect(await get(evil), evil).toBe(403)
    }
    for (const good of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', `[::1]:${port}`, `${hostname()}:${port}`, `${hostname()}.lan`, 'box.localhost']) {
      expect(await get(good), good).toBe(200)
    }
  })

  it('refuses a client outside the allow list with 403', async () => {
    const fx = await fixture({ allow: ['10.0.0.0/8'] })
    expect((await fetch(`${fx.url}/distfiles/layout.conf`)).status).toBe(403)
  })

  it('closes a connection whose head never ends (slowloris), and bounds connections', async () => {
    const fx = await fixture({ headersTimeoutMs: 500, maxConnections: 4 })
    const { port } = new URL(fx.url)
    const slow: Socket[] = []
    const closed: Array<Promise<void>> = []
    for (let i = 0; i < 4; i++) {
      const s = connect(Number(port), '127.0.0.1')
      s.on('error', () => {}).resume()
      slow.push(s)
      closed.push(new Promise((resolve) => s.on('close', () => resolve())))
      s.write('GET /distfiles/layout.conf HTTP/1.1\r\nHost: localhost\r\n')
    }
    await Promise.all(slow.map(async (s) => { if (s.connecting) await new Promise((resolve) => s.once('connect', resolve)) }))
    await sleep(100)
    // A fifth while four are open: dropped at once.
    const fifth = await raw(fx.url, get('/distfiles/layout.conf'))
    expect(fifth.status).toBe(0)
    // The slow ones are cut by the headers timeout (the test's own timeout bounds the wait).
    await Promise.all(closed)
    expect((await fetch(`${fx.url}/distfiles/layout.conf`)).status).toBe(200)
  })

  it('closes an idle keep-alive connection', async () => {
    const fx = await fixture({ idleTimeoutMs: 300 })
    const { port } = new URL(fx.url)
    const s = connect(Number(port), '127.0.0.1')
    s.on('error', () => {}).resume()
    const closed = new Promise<void>((resolve) => s.on('close', () => resolve()))
    s.write('GET /distfiles/layout.conf HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await closed
  })
})

describe('Gateway routes', () => {
  it('offers other paths to the page handler, answers /api/status itself, 404 otherwise; /metrics from its source', async () => {
    const seen: string[] = []
    const fx = await fixture({
      page: (req, res) => {
        seen.push(req.url!)
        if (req.url !== '/') return false
        res.writeHead(200, { 'content-type': 'text/html' }).end('<p>page</p>')
        return true
      },
      metrics: { contentType: 'text/plain; version=0.0.4; charset=utf-8', render: () => 'distswarm_x 1\n' }
    })
    expect(await (await fetch(`${fx.url}/`)).text()).toBe('<p>page</p>')
    expect(await (await fetch(`${fx.url}/api/status`)).json()).toEqual({ name: 'fixture' })
    expect((await fetch(`${fx.url}/nothing`)).status).toBe(404)
    expect(seen).toEqual(['/', '/api/status', '/nothing'])
    const m = await fetch(`${fx.url}/metrics`)
    expect([m.status, m.headers.get('content-type'), await m.text()]).toEqual([200, 'text/plain; version=0.0.4; charset=utf-8', 'distswarm_x 1\n'])

    const failing = await fixture({ page: () => { throw new Error('boom') } })
    expect((await fetch(`${failing.url}/`)).status).toBe(500)
    expect((await fetch(`${failing.url}/distfiles/layout.conf`)).status).toBe(200)
  })
})
