import { describe, expect, it, onTestFinished } from 'vitest'
import { EventEmitter, once } from 'node:events'
import { existsSync } from 'node:fs'
import { copyFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { chromium, type Page } from 'playwright-core'
import type { Agent } from '@distswarm/agent'
import { createStatusPage, type FetchEventSource } from '@distswarm/statuspage'
import { localNet, tempDir, waitFor, whileStopped, writeRandomFile } from '../harness.js'

const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const MiB = 1024 * 1024
/** A name a peer chose: markup, which the page must show as text. */
const EVIL = '<script>window.__xss=1</script><img src=x onerror=alert(1)>'

// The Agent itself can feed the page its fetch events (a compile-time check: the gateway hands it in).
export const agentFeedsEvents = (a: Agent): FetchEventSource => a

const hasChromium = existsSync(CHROMIUM)
if (!hasChromium) console.log(`status page browser test skipped: ${CHROMIUM} is absent (apt-get install chromium; .ci/run installs it)`)

/** What the page shows for the transfer in flight: bytes done, or null when it shows none. */
async function shownDone (page: Page): Promise<number | null> {
  const bars = page.locator('#transfer-list progress')
  if (await bars.count() === 0) return null
  // the bar may go between the two looks: then it shows none
  const done = await bars.first().getAttribute('data-done', { timeout: 1000 }).catch(() => null)
  return done === null ? null : Number(done)
}

describe.skipIf(!hasChromium)('the status page in a real browser', () => {
  it('shows a running agent: its status, its peers (names as text), a transfer whose progress moves; loads nothing from elsewhere', async () => {
    const net = await localNet()
    const dir = await tempDir('distswarm-statuspage-')
    const name = 'huge-1.0.tar.xz'
    await writeRandomFile(join((await net.dirs('seeder')).distdir, name), 256 * MiB)
    // The seeder serves over hyperswarm's stream (no fast path): slower, and frozen (SIGSTOP) to hold the transfer still.
    const [seeder, box] = await Promise.all([
      net.startAgent({ name: 'seeder', args: ['--data-port', 'off', '--name', EVIL] }),
      // The seeder is frozen for seconds below: --dead-peer-ms keeps the box from taking it for dead.
      net.startAgent({ name: 'box', args: ['--cache-max-size', '1G', '--dead-peer-ms', '120000'] })
    ])
    const client = await box.client()
    onTestFinished(() => client.close())
    await waitFor(async () => (await client.call('where', { query: name })).remote.length > 0, 30_000, "the seeder's inventory at box")

    // The page, backed by the box's control socket, on a server of its own.
    const events = new EventEmitter()
    const statusPage = createStatusPage({
      status: () => client.call('status', {}),
      peers: () => client.call('peers', {}),
      events,
      sampleIntervalMs: 500,
      liveIntervalMs: 250
    })
    await statusPage.start()
    onTestFinished(() => statusPage.stop())
    const server = createServer((req, res) => {
      if (!statusPage.handle(req, res)) {
        res.writeHead(404)
        res.end()
      }
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    onTestFinished(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

    const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: CHROMIUM, args: ARGS, headless: true, viewport: { width: 1280, height: 900 }
    })
    onTestFinished(() => context.close())
    const requests: string[] = []
    const problems: string[] = []
    context.on('request', (r) => { requests.push(r.url()) })
    const page = context.pages()[0] ?? await context.newPage()
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`) })
    page.on('pageerror', (e) => { problems.push(`page error: ${e.message}`) })
    await page.goto(base + '/')

    // this box and its peer, as the control socket reports them
    const [seederKey] = (await client.call('peers', {})).map((p) => p.publicKey)
    await page.waitForSelector(`#peer-rows tr[data-key="${seederKey}"]`, { timeout: 30_000 })
    const status = await client.call('status', {})
    const [peer] = await client.call('peers', {})
    const text = (sel: string): Promise<string> => page.locator(sel).innerText()
    const value = (sel: string): Promise<string | null> => page.locator(sel).getAttribute('data-value')
    expect(await text('#box-name')).toBe('box')
    expect(await text('#f-key')).toBe(status.publicKey)
    expect(await text('#f-network')).toBe(status.network)
    expect(await value('#f-inventory')).toBe(String(status.files))
    expect(await value('#f-peers')).toBe(String(status.peers))
    expect(await value('#cache-text')).toBe(String(status.cache.bytes))
    expect(await text('#cache-text')).toMatch(/of 1\.0 GiB/)
    const cells = await page.locator(`#peer-rows tr[data-key="${seederKey}"] td`).allInnerTexts()
    expect(cells.slice(0, 4)).toEqual([peer!.name, peer!.address ?? '-', peer!.path, String(peer!.files)])
    // the peer's name is text: no element it spells out was made, nothing it holds ran
    expect(peer!.name).toBe(EVIL)
    expect(await page.evaluate('window.__xss ?? null')).toBeNull()
    expect(await page.locator('script').count()).toBe(1) // the page's own
    expect(await page.locator('img').count()).toBe(0)

    // A transfer in flight, held still twice by freezing the seeder: the page's bar shows one value, then a larger one.
    const fetcher = await box.client()
    onTestFinished(() => fetcher.close())
    const fetching = fetcher.call('fetch', { query: name }).then((r) => { events.emit('fetched', r); return r })
    const boxDone = async (): Promise<number> => (await client.call('status', {})).transfers[0]?.bytesDone ?? 0
    await waitFor(async () => await boxDone() > 0, 60_000, 'the transfer to start', 10)
    const first = await whileStopped(seeder, async () => {
      await waitFor(async () => (await shownDone(page) ?? 0) > 0, 30_000, 'the page to show the transfer')
      // Whom the transfer takes its bytes from, by name.
      await waitFor(async () => (await page.locator('#transfer-list .sources').first().textContent()) === `from ${EVIL}`, 30_000, 'the transfer\'s source on the page, its name as text')
      return (await shownDone(page))!
    })
    await waitFor(async () => await boxDone() > first + MiB, 60_000, 'the transfer to move on', 10)
    const second = await whileStopped(seeder, async () => {
      await waitFor(async () => (await shownDone(page) ?? 0) > first, 30_000, 'the page to show more bytes')
      const shown = (await shownDone(page))!
      await waitFor(async () => (await page.locator('#chart path').count()) > 0, 30_000, 'traffic in the chart')
      await page.screenshot({ path: join(dir, 'statuspage.png'), fullPage: true })
      await page.setViewportSize({ width: 390, height: 844 })
      await page.emulateMedia({ colorScheme: 'dark' })
      await page.screenshot({ path: join(dir, 'statuspage-phone-dark.png'), fullPage: true })
      await page.setViewportSize({ width: 1280, height: 900 })
      await page.emulateMedia({ colorScheme: 'light' })
      return shown
    })
    expect(second).toBeGreaterThan(first)
    expect(second).toBeLessThan(256 * MiB)
    await copyFile(join(dir, 'statuspage.png'), '/tmp/statuspage.png')
    await copyFile(join(dir, 'statuspage-phone-dark.png'), '/tmp/statuspage-phone-dark.png')

    // done: the bar goes, the fetch is listed as one from peers
    const done = await fetching
    expect(done.source).toBe('swarm')
    await page.waitForSelector('#fetch-rows .badge.o-peers', { timeout: 30_000 })
    expect(await page.locator('#fetch-rows tr').first().locator('td').nth(1).innerText()).toBe(name)
    await waitFor(async () => await shownDone(page) === null, 30_000, 'the transfer to leave the page')
    await page.screenshot({ path: join(dir, 'statuspage-done.png'), fullPage: true })
    await copyFile(join(dir, 'statuspage-done.png'), '/tmp/statuspage-done.png')

    expect(problems).toEqual([])
    expect(requests.length).toBeGreaterThan(1)
    expect(requests.filter((u) => !u.startsWith(base + '/'))).toEqual([])

    // No room for another live client: the stream is refused (503) and the page polls the snapshot instead.
    const full = createStatusPage({ status: () => client.call('status', {}), peers: () => client.call('peers', {}), maxClients: 0 })
    await full.start()
    onTestFinished(() => full.stop())
    const server2 = createServer((req, res) => { if (!full.handle(req, res)) { res.writeHead(404); res.end() } })
    server2.listen(0, '127.0.0.1')
    await once(server2, 'listening')
    onTestFinished(() => new Promise<void>((resolve) => { server2.closeAllConnections(); server2.close(() => resolve()) }))
    const base2 = `http://127.0.0.1:${(server2.address() as AddressInfo).port}`
    const polled = await context.newPage()
    const polledProblems: string[] = []
    polled.on('console', (m) => { if (m.type() === 'error') polledProblems.push(m.text()) })
    polled.on('pageerror', (e) => { polledProblems.push(`page error: ${e.message}`) })
    await polled.goto(base2 + '/')
    await polled.waitForSelector(`#peer-rows tr[data-key="${seederKey}"]`, { timeout: 30_000 })
    expect(await polled.locator('#conn').innerText()).toBe('polling')
    expect(await polled.locator('#f-key').innerText()).toBe(status.publicKey)
    // the only complaint is the browser's about the refused stream
    expect(polledProblems.filter((t) => !/EventSource|503/.test(t))).toEqual([])
  }, 300_000) // 256 MiB written, then fetched over hyperswarm's stream on a loaded machine
})
