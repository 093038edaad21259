#!/usr/bin/env node
// Compiles src/aead.c into dist/aead.node with the C compiler and the headers
// of the Node that runs this.
// Without a compiler or the headers it says so and exits 0: the data link
// then seals its records with libsodium (slower, the same bytes on the wire).
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const include = join(dirname(process.execPath), '..', 'include', 'node')
const out = join(root, 'dist', 'aead.node')
const cc = process.env.CC ?? 'cc'

function skip (why) {
  console.log(`@distswarm/swarm: ${why}; the data link will use libsodium's ChaCha20-Poly1305 (slower, the same bytes on the wire)`)
  process.exit(0)
}

// OpenSSL's headers are Node's own (official builds) or the system's (a Node linked to the system's OpenSSL, as distributions build it).
// An addon from an earlier build is not kept when this one cannot be made.
rmSync(out, { force: true })
if (!existsSync(join(include, 'node_api.h'))) skip(`no Node headers at ${include}`)
mkdirSync(dirname(out), { recursive: true })
// Node's own symbols (Node-API, OpenSSL) are resolved when Node loads the addon: all of them then (-z now), so a Node without them fails to load it, not at the first record.
const args = ['-shared', '-fPIC', '-O2', '-std=c11', '-Wall', '-Wl,-z,now', `-I${include}`, '-o', out, join(root, 'src', 'aead.c')]
const r = spawnSync(cc, args, { stdio: ['ignore', 'inherit', 'inherit'] })
if (r.error) skip(`no C compiler (${cc}: ${r.error.code ?? r.error.message})`)
if (r.status !== 0) skip(`${cc} could not compile src/aead.c (exit ${r.status}, above)`)
