import { createHash } from 'node:crypto'
import { EventEmitter, once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createStatusPage, type StatusPage, type StatusPageInit } from '../src/index.js'

/** A status shaped as the agent's StatusResult, as far as the page reads it. */
function fakeStatus (over: Record<string, unknown> = {}) {
  return {
    name: 'box', seed: false, publicKey: 'ab'.repeat(32), network: '0123456789abcdef', uptimeMs: 61_000,
    files: 3, bytes: 3000, cache: { bytes: 1000, maxBytes: 4000 }, peers: 1,
    fetches: { inFlight: 0, completed: 2, failed: 0, bytesFetched: 2000 },
    transfers: [] as Array<{ name: string, blake2b: string, size: number, bytesDone: number, startedAt: string }>,
    traffic: { servedToPeers: 0, fetchedFromPeers: 0, fetchedUpstream: 0, upstreamFiles: 0 },
    manifest: { repos: [], names: 0, problems: 0 },
    ...over
  }
}

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** The page's handler mounted on a real server on 127.0.0.1, 404 for what it does not own. */
async function serve (init: Partial<StatusPageInit> = {}): Promise<{ page: StatusPage, base: string, server: Server }> {
  const page = createStatusPage({ status: async () => fakeStatus(), ...init })
  await page.start()
  cleanups.push(() => page.stop())
  const server = createServer((req, res) => {
    if (!page.handle(req, res)) {
      res.writeHead(404, { 'Content-Type': 'text/plain' })
      res.end('gateway: not mine\n')
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanups.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { page, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

async function get (url: string, method = 'GET'): Promise<{ status: number, headers: IncomingHttpHeaders, body: string }> {
  return await new Promise((resolve, reject) => {
    request(url, { method }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => { body += d }).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    }).on('error', reject).end()
  })
}

/** Reads server-sent events from `url` until `until` holds for the events so far. */
async function events (url: string, until: (evs: Array<{ event: string, data: unknown }>) => boolean): Promise<Array<{ event: string, data: unknown }>> {
  return await new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      expect(res.headers['content-type']).toMatch(/^text\/event-stream/)
      const evs: Array<{ event: string, data: unknown }> = []
      let buf = ''
      res.setEncoding('utf8').on('data', (d: string) => {
        buf += d
        let i
        while ((i = buf.indexOf('\n\n')) !== -1) {
          const frame = buf.slice(0, i)
          buf = buf.slice(i + 2)
          const event = /^event: (.*)$/m.exec(frame)?.[1]
          const data = /^data: (.*)$/m.exec(frame)?.[1]
          if (event !== undefined && data !== undefined) evs.push({ event, data: JSON.parse(data) })
        }
        if (until(evs)) {
          req.destroy()
          resolve(evs)
        }
      })
    })
    req.on('error', reject).end()
  })
}

describe('routes', () => {
  it('owns / and /api/…; leaves every other path to its caller', async () => {
    const { base } = await serve()
    for (const path of ['/distfiles/layout.conf', '/metrics', '/index.html', '/apix', '/favicon.ico']) {
      const r = await get(base + path)
      expect([path, r.status, r.body]).toEqual([path, 404, 'gateway: not mine\n'])
    }
    const page = await get(base + '/?x=1')
    expect(page.status).toBe(200)
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(page.body).toMatch(/^<!doctype html>/)
    expect(Number(page.headers['content-length'])).toBe(Buffer.byteLength(page.body))
  })

  it('/api/status is the status as the agent gave it, unchanged', async () => {
    const s = fakeStatus({ name: 'exact' })
    const { base } = await serve({ status: async () => s })
    const r = await get(base + '/api/status')
    expect(r.status).toBe(200)
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(r.headers['x-content-type-options']).toBe('nosniff')
    expect(JSON.parse(r.body)).toEqual(s)
  })

  it('/api/peers, /api/snapshot, /api/fetches, /api/history; an unknown /api path is a 404 in JSON', async () => {
    const peers = [{ name: 'p', publicKey: 'cd'.repeat(32) }]
    const events = new EventEmitter()
    const { base } = await serve({ peers: async () => peers, events })
    events.emit('fetched', { name: 'a.tar.xz', size: 10, source: 'swarm', durationMs: 5 })
    events.emit('fetched', { name: 'b.tar.xz', size: 20, source: 'local', durationMs: 0 })
    events.emit('fetch-failed', { query: 'c.tar.xz', code: 'ERR_NOT_FOUND', message: 'no peer' })
    events.emit('fetch-failed', { query: 'd.tar.xz', code: 'ERR_ALL_SOURCES_FAILED', message: 'x' })
    events.emit('upstream', { name: 'e.tar.xz', bytes: 30 })
    events.emit('lookup', { name: 'f.tar.xz', outcome: 'local', bytes: 7 })
    events.emit('lookup', { name: 'g.tar.xz', outcome: 'miss' })
    expect(JSON.parse((await get(base + '/api/peers')).body)).toEqual(peers)
    const fetches = JSON.parse((await get(base + '/api/fetches')).body) as Array<{ name: string, outcome: string }>
    expect(fetches.map((f) => [f.name, f.outcome])).toEqual([
      ['g.tar.xz', 'miss'], ['f.tar.xz', 'local'], ['e.tar.xz', 'upstream'], ['d.tar.xz', 'failed'], ['c.tar.xz', 'miss'], ['b.tar.xz', 'local'], ['a.tar.xz', 'peers']
    ])
    const snap = JSON.parse((await get(base + '/api/snapshot')).body)
    expect(snap).toMatchObject({ status: { name: 'box' }, peers, fetches })
    expect(JSON.parse((await get(base + '/api/history')).body)).toMatchObject({ intervalMs: 10_000, capacity: 360, samples: [] })
    const missing = await get(base + '/api/nope')
    expect(missing.status).toBe(404)
    expect(JSON.parse(missing.body).error.message).toMatch(/no such endpoint/)
  })

  it('GET and HEAD only: 405 with Allow for the others; HEAD has the headers and no body', async () => {
    const { base } = await serve()
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const r = await get(base + '/api/status', method)
      expect([method, r.status, r.headers.allow]).toEqual([method, 405, 'GET, HEAD'])
    }
    const head = await get(base + '/', 'HEAD')
    expect(head.status).toBe(200)
    expect(head.body).toBe('')
    expect(Number(head.headers['content-length'])).toBeGreaterThan(1000)
  })

  it('an agent that does not answer: 503 with its error code, and the page logs a warning once', async () => {
    const warned: string[] = []
    const logger = { error () {}, warn (e: string) { warned.push(e) }, info () {}, debug () {}, child () { return logger } }
    const err = Object.assign(new Error('no agent answers on /run/x.sock'), { code: 'ERR_AGENT_UNREACHABLE' })
    const { base } = await serve({ status: async () => { throw err }, logger })
    const r = await get(base + '/api/status')
    expect(r.status).toBe(503)
    expect(JSON.parse(r.body).error).toEqual({ code: 'ERR_AGENT_UNREACHABLE', message: 'the agent did not answer: no agent answers on /run/x.sock' })
    await get(base + '/api/status')
    expect(warned).toEqual(['status.failed'])
  })

  it('an agent that never answers: 503 once answerTimeoutMs pass, not a request left hanging', async () => {
    const { base } = await serve({ status: () => new Promise(() => {}), answerTimeoutMs: 50 })
    const r = await get(base + '/api/status')
    expect(r.status).toBe(503)
    expect(JSON.parse(r.body).error.message).toMatch(/no answer within 50 ms/)
  })

  it('before start() and after stop(): 503 for its own paths, still false for the others', async () => {
    const page = createStatusPage({ status: async () => fakeStatus() })
    const server = createServer((req, res) => { if (!page.handle(req, res)) { res.writeHead(404); res.end() } })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    expect((await get(base + '/')).status).toBe(503)
    await page.start()
    await page.start() // idempotent
    expect((await get(base + '/')).status).toBe(200)
    await page.stop()
    await page.stop()
    expect((await get(base + '/api/status')).status).toBe(503)
    expect((await get(base + '/other')).status).toBe(404)
  })

  it('refuses bad options with ERR_INVALID_OPTION', () => {
    const status = async () => fakeStatus()
    const bad: Array<Partial<StatusPageInit>> = [
      { status: undefined }, { sampleIntervalMs: 0 }, { answerTimeoutMs: 0 }, { liveIntervalMs: 1.5 }, { maxClients: -1 },
      { peers: 'x' as unknown as StatusPageInit['peers'] }, { events: {} as StatusPageInit['events'] }
    ]
    for (const b of bad) {
      expect(() => createStatusPage({ status, ...b } as StatusPageInit)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }))
    }
  })
})

describe('live updates', () => {
  it('a stream gets the history, then statuses; traffic samples arrive as they are taken', async () => {
    let fetched = 0
    const { base } = await serve({
      status: async () => fakeStatus({ traffic: { servedToPeers: 0, fetchedFromPeers: (fetched += 1000), fetchedUpstream: 0, upstreamFiles: 0 } }),
      sampleIntervalMs: 50,
      liveIntervalMs: 20
    })
    const evs = await events(base + '/api/events', (e) => e.filter((x) => x.event === 'status').length >= 2 && e.some((x) => x.event === 'sample'))
    expect(evs[0]).toMatchObject({ event: 'history', data: { intervalMs: 50, capacity: 360 } })
    expect(evs.find((x) => x.event === 'status')).toMatchObject({ data: { status: { name: 'box' }, peers: [], fetches: [] } })
    const sample = evs.find((x) => x.event === 'sample')!.data as { fromPeers: number }
    expect(sample.fromPeers).toBeGreaterThan(0)
  })

  it('at most maxClients streams; one more gets 503; a closed one frees its place', async () => {
    const { base, page } = await serve({ maxClients: 2, liveIntervalMs: 20 })
    const open = [request(base + '/api/events'), request(base + '/api/events')]
    const responses = await Promise.all(open.map(async (r) => { r.end(); return (await once(r, 'response'))[0] }))
    expect(responses.map((r) => r.statusCode)).toEqual([200, 200])
    const third = await get(base + '/api/events')
    expect(third.status).toBe(503)
    expect(third.headers['retry-after']).toBe('10')
    open[0]!.destroy()
    const deadline = Date.now() + 5000
    while (page.clients > 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(page.clients).toBe(1)
    const again = await events(base + '/api/events', (e) => e.length >= 1)
    expect(again[0]!.event).toBe('history')
    open[1]!.destroy()
  })

  it('a client that stops reading is cut once 1 MiB waits for it: a stalled tab does not grow the agent', async () => {
    const big = 'x'.repeat(256 * 1024)
    const { base, page } = await serve({ status: async () => fakeStatus({ name: big }), liveIntervalMs: 10 })
    const r = request(base + '/api/events')
    r.end()
    const [res] = await once(r, 'response')
    res.pause() // reads nothing more: the kernel's buffers fill, then the server's
    const closed = once(r.socket!, 'close')
    const deadline = Date.now() + 20_000
    while (page.clients > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    expect(page.clients).toBe(0)
    res.resume()
    await closed
  }, 30_000)

  it('stop() ends every stream', async () => {
    const { base, page } = await serve({ liveIntervalMs: 20 })
    const r = request(base + '/api/events')
    r.end()
    const [res] = await once(r, 'response')
    res.resume()
    const ended = once(res, 'end')
    await page.stop()
    await ended
    expect(page.clients).toBe(0)
  })
})

describe('the page', () => {
  it('pins its inline style and script by hash in its Content-Security-Policy; nothing loads from elsewhere', async () => {
    const { base } = await serve()
    const r = await get(base + '/')
    const csp = r.headers['content-security-policy']!
    expect(csp).toMatch(/default-src 'none'/)
    expect(csp).toMatch(/connect-src 'self'/)
    const hash = (t: string) => `'sha256-${createHash('sha256').update(t).digest('base64')}'`
    const script = /<script>([\s\S]*)<\/script>/.exec(r.body)![1]!
    const style = /<style>([\s\S]*)<\/style>/.exec(r.body)![1]!
    expect(csp).toContain(`script-src ${hash(script)}`)
    expect(csp).toContain(`style-src ${hash(style)}`)
    // no other origin: no URL with a scheme but the SVG namespace, no src= or href= but the empty icon
    expect(r.body.match(/https?:\/\/[^\s'"`)]+/g)).toEqual(['http://www.w3.org/2000/svg'])
    expect(r.body.match(/\b(?:src|href)=/g)).toEqual(['href='])
    expect(r.body).toContain('<link rel="icon" href="data:,">')
  })

  it('puts text from the agent and its peers into the page as text only: no markup-parsing sink in its script', async () => {
    const js = await readFile(new URL('../assets/page.js', import.meta.url), 'utf8')
    for (const sink of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'createContextualFragment', 'DOMParser', 'eval(', 'Function(']) {
      expect([sink, js.includes(sink)]).toEqual([sink, false])
    }
  })

  it('JSON carries a peer name with markup as a JSON string, served as application/json with nosniff', async () => {
    const name = '<script>alert(1)</script>'
    const { base } = await serve({ status: async () => fakeStatus({ name }), peers: async () => [{ name }] })
    const r = await get(base + '/api/peers')
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(r.headers['x-content-type-options']).toBe('nosniff')
    expect(JSON.parse(r.body)).toEqual([{ name }])
  })
})
