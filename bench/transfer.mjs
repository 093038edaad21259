#!/usr/bin/env node
// Verified transfer of one file between two agent processes on loopback,
// against the baseline a user has without distswarm, in the same run: a
// plain HTTP download (curl, from a local server) followed by b2sum and
// sha512sum. Also the receiving agent's peak RSS.
// Usage: node bench/transfer.mjs [MiB=1024] [runs=3]
import { execFileSync, spawn } from 'node:child_process'
import { createReadStream } from 'node:fs'
import { readFile, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { LocalNet, waitFor, writeRandomFile } from '@distswarm/localnet'

const MiB = Number(process.argv[2] ?? 1024)
const RUNS = Number(process.argv[3] ?? 3)
const require = createRequire(import.meta.url)
const cliPkg = require.resolve('@distswarm/cli/package.json')
const bin = join(dirname(cliPkg), require(cliPkg).bin.distswarm)
const name = `bench-${MiB}m.tar.xz`
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (xs) => `${median(xs).toFixed(2)} s | ${Math.min(...xs).toFixed(2)} s | ${Math.max(...xs).toFixed(2)} s`

const net = await LocalNet.create({ bin })
try {
  const seedDirs = await net.dirs('seeder')
  const source = join(seedDirs.distdir, name)
  await writeRandomFile(source, MiB * 1024 * 1024)
  await net.startBootstrap()
  const [, receiver] = await Promise.all([net.startAgent({ name: 'seeder' }), net.startAgent({ name: 'receiver' })])
  await waitFor(async () => {
    const c = await receiver.client()
    try { return (await c.call('where', { query: name })).remote.length > 0 } finally { c.close() }
  }, 60_000, 'the receiver to see the file')

  const ours = []
  for (let i = 0; i < RUNS; i++) {
    const cached = join(receiver.cacheDir, name)
    await rm(cached, { force: true })
    await waitFor(async () => {
      const c = await receiver.client()
      try { return (await c.call('where', { query: name })).local.length === 0 } finally { c.close() }
    }, 30_000, 'the receiver to forget its copy')
    const c = await receiver.client()
    const t = process.hrtime.bigint()
    try { await c.call('fetch', { query: name }) } finally { c.close() }
    ours.push(Number(process.hrtime.bigint() - t) / 1e9)
    if ((await stat(cached)).size !== MiB * 1024 * 1024) throw new Error('wrong size')
  }
  const peers = await (async () => { const c = await receiver.client(); try { return await c.call('peers', {}) } finally { c.close() } })()
  const status = await readFile(`/proc/${receiver.child.pid}/status`, 'utf8')
  const peakRssMiB = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024

  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-length': MiB * 1024 * 1024 })
    createReadStream(source).pipe(res)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${server.address().port}/${name}`
  const out = join(net.root, 'curl-download')
  const theirs = []
  try {
    for (let i = 0; i < RUNS; i++) {
      await rm(out, { force: true })
      const t = process.hrtime.bigint()
      // what the curl child does is the point; run it without blocking the server's event loop
      await new Promise((resolve, reject) => {
        const child = spawn('curl', ['-sf', '-o', out, url], { stdio: 'ignore' })
        child.on('exit', (code) => code === 0 ? resolve() : reject(new Error(`curl exited ${code}`)))
      })
      execFileSync('b2sum', [out], { stdio: 'ignore' })
      execFileSync('sha512sum', [out], { stdio: 'ignore' })
      theirs.push(Number(process.hrtime.bigint() - t) / 1e9)
    }
  } finally {
    server.close()
  }
  const path = peers[0]?.path ?? '?'
  console.log(`verified transfer: ${MiB} MiB between two agent processes on 127.0.0.1 (${path} path), ${RUNS} runs\n`)
  console.log('| method | median | min | max |')
  console.log('|---|---|---|---|')
  console.log(`| distswarm fetch (verified BLAKE2B+SHA512, published) | ${fmt(ours)} |`)
  console.log(`| curl from local HTTP, then b2sum, then sha512sum (baseline) | ${fmt(theirs)} |`)
  console.log(`\nratio: distswarm is ${(median(theirs) / median(ours)).toFixed(2)}x the baseline's speed (${(MiB / median(ours)).toFixed(0)} MiB/s vs ${(MiB / median(theirs)).toFixed(0)} MiB/s)`)
  console.log(`receiving agent peak RSS: ${peakRssMiB.toFixed(0)} MiB`)
} finally {
  await net.close()
}
