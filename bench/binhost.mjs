#!/usr/bin/env node
// 10. The binhost's merged index: 10 builders × 5 000 builds each (Portage
// stanzas of the usual size, DEPEND strings included), merged into one
// Packages by the binpkg library's BinhostIndex and served by the gateway's
// /binpkgs/Packages. Time for curl (a separate process; its own time_total)
// to get the whole index, a 304 answer, and Packages.gz; the merge's CPU; the
// process's RSS with the merged index held.
// Usage: node bench/binhost.mjs [--quick] [--json FILE]
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { promisify } from 'node:util'
import { BinhostIndex } from '@distswarm/binpkg'
import { Gateway } from '@distswarm/gateway'
import { DistSwarm, createKeyPair, signBuild } from '@distswarm/swarm'
import { MiB, call, cpuOf as cpuOfPid, main, memOf, now, row, startNet, waitFor } from './lib.mjs'

const ROUNDS = 10
/** GETs of an unchanged index per round. */
const STEADY = 5
const CHOST = 'x86_64-pc-linux-gnu'
/**
 * The agent's RSS with 10 x 5 000 builds: ~50 000 typical builds fill the
 * default shared build pool (limits.ts maxBuildPoolBytes, 128 MiB as it
 * counts them), so this is what a full pool costs. 741 MiB before the builds'
 * memory was cut (2026-11-30).
 */
const RSS_TARGET_MIB = 300
const exec = promisify(execFile)

const hex = (s, algo = 'sha512') => createHash(algo).update(s).digest('hex')

/** A stanza as Portage writes one for a mid-sized package. */
function stanza (builder, i) {
  const pn = `pkg${i % 1500}`
  const cpv = `cat-${i % 40}/${pn}-${1 + (i % 7)}.${i % 11}.${builder}`
  return {
    BDEPEND: 'virtual/pkgconfig sys-devel/gettext',
    BUILD_ID: '1',
    BUILD_TIME: String(1_790_000_000 + i),
    CHOST,
    CPV: cpv,
    DEFINED_PHASES: 'compile configure install prepare test',
    DEPEND: `>=dev-libs/openssl-3.0:0= sys-libs/zlib:= dev-libs/libxml2:2 ssl? ( dev-libs/openssl:0= ) >=dev-libs/glib-2.${i % 80}:2`,
    EAPI: '8',
    IUSE: 'debug doc +ssl static-libs test',
    KEYWORDS: 'amd64 ~arm64 x86',
    LICENSE: 'GPL-2+ LGPL-2.1',
    MD5: hex(`md5 ${builder} ${i}`, 'md5'),
    MTIME: String(1_790_000_000 + i),
    PATH: `cat-${i % 40}/${pn}/${pn}-1-1.gpkg.tar`,
    RDEPEND: `>=dev-libs/openssl-3.0:0= sys-libs/zlib:= dev-libs/libxml2:2 ssl? ( dev-libs/openssl:0= ) >=dev-libs/glib-2.${i % 80}:2`,
    REPO: 'gentoo',
    SHA1: hex(`sha1 ${builder} ${i}`, 'sha1'),
    SIZE: String(100_000 + (i * 7919) % 50_000_000),
    SLOT: '0',
    USE: `abi_x86_64 amd64 elibc_glibc kernel_linux ssl${i % 2 ? ' doc' : ''}${builder % 2 ? ' debug' : ''}`
  }
}

async function curlTime (args) {
  const { stdout } = await exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{time_total} %{size_download}', ...args], { maxBuffer: 1024 * 1024 })
  const [code, seconds, bytes] = stdout.trim().split(' ')
  return { code: Number(code), ms: Number(seconds) * 1000, bytes: Number(bytes) }
}

/**
 * The same index in a real agent process: BUILDERS DistSwarm peers in this
 * process, each advertising PER signed builds (setBuilds) to the agent over
 * the real protocol; the agent (binpkg-trust all-members) merges them and
 * serves /binpkgs/Packages. Resolves to its figures.
 */
async function agentPhase ({ BUILDERS, PER, onCleanup }) {
  const net = await startNet()
  const swarms = []
  const cleanup = async () => { await Promise.all(swarms.map((s) => s.stop())); await net.close() }
  onCleanup(cleanup)
  try {
    const agent = await net.startAgent({ name: 'agent', args: ['--chost', CHOST, '--binpkg-trust', 'all-members', '--pkgdir', '/nonexistent-distswarm-bench'] })
    // The data port and the gateway are bound a moment after the control socket answers.
    let status = null
    await waitFor(async () => { status = await call(agent, 'status'); return status.dataPort !== null && status.url !== null }, 60_000, 'the agent\'s data port and gateway', 200)
    const { dataPort, url } = status
    const rssAlone = memOf(agent.child.pid, 'VmRSS')
    const t0 = now()
    for (let b = 0; b < BUILDERS; b++) {
      const keyPair = createKeyPair()
      const swarm = new DistSwarm({
        networkKey: Buffer.from(net.networkKey, 'hex'),
        keyPair,
        bootstrap: [],
        host: '127.0.0.1',
        dataPort: null,
        staticPeers: [{ host: '127.0.0.1', port: dataPort }],
        name: `builder-${b}`,
        source: { entries: () => [], get: () => undefined }
      })
      swarms.push(swarm)
      await swarm.start()
      const ads = []
      for (let i = 0; i < PER; i++) {
        const fields = stanza(b, i)
        delete fields.PATH
        ads.push(signBuild({ blake2b: createHash('blake2b512').update(`file ${b} ${i}`).digest(), size: Number(fields.SIZE), group: CHOST, fields }, keyPair))
      }
      swarm.setBuilds(ads)
    }
    await waitFor(async () => (await call(agent, 'status')).builds.served === BUILDERS * PER, 600_000, `${BUILDERS * PER} builds in the agent's index`, 500)
    const loadedS = now() - t0
    const m = { get: [], rss: [], hwm: [], cpu: [] }
    for (let r = 0; r < ROUNDS; r++) {
      const c0 = cpuOfPid(agent.child.pid)
      const g = await curlTime([`${url}/binpkgs/Packages`])
      if (g.code !== 200) throw new Error(`agent GET Packages: ${g.code}`)
      m.cpu.push((cpuOfPid(agent.child.pid) - c0) * 1000)
      m.get.push(g.ms)
      m.rss.push(memOf(agent.child.pid, 'VmRSS'))
      m.hwm.push(memOf(agent.child.pid, 'VmHWM'))
    }
    return { m, rssAlone, loadedS }
  } finally {
    await cleanup()
  }
}

export async function bench ({ quick, onCleanup }) {
  const BUILDERS = 10
  const PER = quick ? 1000 : 5000
  const rssBefore = memOf(process.pid, 'VmRSS')
  const builders = Array.from({ length: BUILDERS }, (_, b) => hex(`builder ${b}`, 'sha256'))
  const offers = []
  for (let b = 0; b < BUILDERS; b++) {
    for (let i = 0; i < PER; i++) offers.push({ blake2b: hex(`file ${b} ${i}`), builder: builders[b], group: CHOST, fields: stanza(b, i) })
  }
  const index = new BinhostIndex({ chost: CHOST, group: CHOST, trust: new Set(builders), header: { ARCH: 'amd64' } })
  const cpu0 = process.cpuUsage()
  const t0 = now()
  let merged = index.merge(offers)
  const mergeS = now() - t0
  const mergeCpu = (() => { const u = process.cpuUsage(cpu0); return (u.user + u.system) / 1e6 })()
  if (merged.builds.size !== offers.length) throw new Error(`merged ${merged.builds.size} of ${offers.length} builds: ${merged.skipped[0]?.reason}`)

  const held = new Map()
  const gateway = new Gateway({
    host: '127.0.0.1',
    port: 0,
    source: {
      local: () => undefined,
      held: () => false,
      fetch: async () => { throw new Error('no distfiles in this benchmark') },
      status: () => ({}),
      binhost: { index: () => ({ body: merged.body, timestamp: merged.timestamp }), local: (p) => held.get(p), fetch: async () => { throw new Error('no files in this benchmark') } }
    }
  })
  await gateway.start()
  onCleanup(() => gateway.stop())
  try {
    const url = `${gateway.url}/binpkgs/Packages`
    const m = { full: [], serverCpu: [], first: [], notModified: [], gz: [], gzFirst: [], rss: [], hwm: [] }
    // The first answer after a change encodes the document: measured apart, for every round below re-merges a changed index.
    for (let r = 0; r < ROUNDS; r++) {
      offers[r].fields = { ...offers[r].fields, USE: `${offers[r].fields.USE} r${r}` }
      merged = index.merge(offers)
      const first = await curlTime([url])
      if (first.code !== 200 || first.bytes !== merged.body.length) throw new Error(`GET Packages: ${first.code}, ${first.bytes} bytes`)
      m.first.push(first.ms)
      for (let i = 0; i < STEADY; i++) {
        const c0 = process.cpuUsage()
        m.full.push((await curlTime([url])).ms)
        const c = process.cpuUsage(c0)
        m.serverCpu.push((c.user + c.system) / 1000)
      }
      const since = new Date(merged.timestamp * 1000).toUTCString()
      const nm = await curlTime(['-z', since, url])
      if (nm.code !== 304) throw new Error(`If-Modified-Since: ${nm.code}`)
      m.notModified.push(nm.ms)
      if (r < 3) {
        m.gzFirst.push((await curlTime([`${url}.gz`])).ms)
        m.gz.push((await curlTime([`${url}.gz`])).ms)
      }
      m.rss.push(memOf(process.pid, 'VmRSS'))
      m.hwm.push(memOf(process.pid, 'VmHWM'))
    }
    const mib = merged.body.length / MiB
    await gateway.stop()
    const a = await agentPhase({ BUILDERS, PER, onCleanup })
    return {
      id: 'binhost',
      title: '10. Binhost index',
      config: { builders: BUILDERS, buildsPerBuilder: PER, rounds: ROUNDS, indexMiB: Number(mib.toFixed(1)) },
      rows: [
        row(`agent process: GET /binpkgs/Packages, ${BUILDERS} peers × ${PER} signed builds, curl time_total`, 'ms', a.m.get, { target: { op: '<', value: 100, text: '< 100 ms' } }),
        row('  agent process: its CPU per GET', 'ms CPU', a.m.cpu),
        row('agent RSS with those builds (VmRSS after each GET)', 'MiB', a.m.rss, { target: { op: '<', value: RSS_TARGET_MIB, text: `< ${RSS_TARGET_MIB} MiB` } }),
        row('  agent peak RSS (VmHWM)', 'MiB', a.m.hwm),
        row('  agent RSS before any peer (1 sample)', 'MiB', [a.rssAlone]),
        row('  time for every build to be in the agent\'s index (1 sample)', 's', [a.loadedS]),
        row(`in-process gateway: GET /binpkgs/Packages (${BUILDERS} × ${PER} builds, ${mib.toFixed(1)} MiB), curl time_total`, 'ms', m.full, { target: { op: '<', value: 100, text: '< 100 ms' } }),
        row('  the gateway process\'s CPU per GET (user + system; the trustworthy figure on a loaded machine)', 'ms CPU', m.serverCpu),
        row('  the first GET after the index changed (encodes it once)', 'ms', m.first),
        row('  GET with If-Modified-Since, unchanged: 304', 'ms', m.notModified),
        row('  GET Packages.gz, first after a change (gzips it once)', 'ms', m.gzFirst),
        row('  GET Packages.gz, again', 'ms', m.gz),
        row(`merge of ${offers.length} offers into one index (1 sample): wall`, 's', [mergeS]),
        row('  merge: CPU', 's CPU', [mergeCpu]),
        row('RSS with the merged index held (VmRSS after each round)', 'MiB', m.rss),
        row('  peak RSS (VmHWM)', 'MiB', m.hwm),
        row('  RSS before the offers were made (1 sample)', 'MiB', [rssBefore])
      ],
      notes: [
        `Agent rows: a real agent process (--binpkg-trust all-members, no PKGDIR of its own) and ${BUILDERS} DistSwarm peers in the bench process, each advertising ${PER} signed builds (synthetic stanzas and digests, no files) over the real protocol; ${ROUNDS} GETs of the merged index once every build was in it.`,
        `In-process rows: the offers are synthetic (${offers.length} stanzas of about ${Math.round(merged.body.length / offers.length)} bytes, random digests, no files), merged by @distswarm/binpkg's BinhostIndex and served by @distswarm/gateway in the bench process; curl is a separate process and its time_total is the figure.`,
        `${ROUNDS} rounds; each changes one stanza and merges again, as an agent does when a build arrives, then GETs the index once (it is encoded then), ${STEADY} times more (the target row), once with If-Modified-Since; the first 3 rounds also GET Packages.gz twice. RSS is the bench process's (offers, merged index, its encoded body and gzip).`,
        quick ? `Quick run: ${BUILDERS} × ${PER} builds instead of 10 × 5 000.` : ''
      ].filter(Boolean)
    }
  } finally {
    await gateway.stop()
  }
}

await main(import.meta.url, bench)
