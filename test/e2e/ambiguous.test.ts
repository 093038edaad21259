/**
 * ERR_AMBIGUOUS: a name that stands for two different files, and a peer
 * prefix that stands for two peers, are refused, naming the candidates.
 */
import { expect, it } from 'vitest'
import { generateKeyPairSync } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { LsResult, PeerInfo, WhereResult } from '@distswarm/agent'
import { cli, cliJson, localNet, waitFor } from '../harness.js'
import { distfile } from '../gentoo.js'

type Outcome = { ok: false, error: { code: string, message: string } }

/** An ed25519 key pair as hyperdht keeps it: the public key, and the seed followed by the public key. */
function keyPair (): { publicKey: Buffer, secretKey: Buffer } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url')
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url')
  return { publicKey: pub, secretKey: Buffer.concat([seed, pub]) }
}

/** Two identities whose public keys share their first `hexDigits` hex digits (about 16^hexDigits tries). */
function twins (hexDigits: number): Array<{ publicKey: string, secretKey: string }> {
  const a = keyPair()
  const prefix = a.publicKey.toString('hex').slice(0, hexDigits)
  for (let tries = 0; tries < 100_000; tries++) {
    const b = keyPair()
    if (b.publicKey.toString('hex').startsWith(prefix)) {
      return [a, b].map((k) => ({ publicKey: k.publicKey.toString('hex'), secretKey: k.secretKey.toString('hex') }))
    }
  }
  throw new Error('no twin key found')
}

it('refuses a name two peers hold with different content, and a peer name or key prefix two peers match (ERR_AMBIGUOUS)', async () => {
  const net = await localNet()
  const name = 'same-name-1.0.tar.gz'
  const [a, b] = [distfile(name), distfile(name)]
  const keys = twins(2)
  for (const [i, [peer, f]] of ([['seed-a', a], ['seed-b', b]] as const).entries()) {
    const dirs = await net.dirs(peer)
    await writeFile(join(dirs.distdir, name), f.data)
    await mkdir(dirs.stateDir, { recursive: true, mode: 0o700 })
    await writeFile(join(dirs.stateDir, 'identity.json'), JSON.stringify(keys[i]) + '\n', { mode: 0o600 })
  }
  const [, , box] = await Promise.all([net.startAgent({ name: 'seed-a' }), net.startAgent({ name: 'seed-b' }), net.startAgent({ name: 'box' })])
  await waitFor(async () => {
    const r = await cli(['where', name, '--control', box.control, '--json'])
    return r.code === 0 && (JSON.parse(r.stdout) as WhereResult).remote.length === 2
  }, 30_000, 'both files at box')

  // By name: two contents, no Manifest to choose; by digest, each is fine.
  const r = await cli(['fetch', name, '--control', box.control, '--json'])
  expect(r.code).toBe(1)
  const [outcome] = JSON.parse(r.stdout) as Outcome[]
  expect(outcome!.error.code).toBe('ERR_AMBIGUOUS')
  for (const f of [a, b]) expect(outcome!.error.message).toContain(f.blake2b.slice(0, 16))

  // A peer: by a name prefix, or a key prefix, that both match; the exact name is fine.
  const peers = await cliJson<PeerInfo[]>(['peers', '--control', box.control])
  expect(peers.map((p) => p.publicKey).sort()).toEqual(keys.map((k) => k.publicKey).sort())
  const client = await box.client()
  try {
    for (const prefix of ['seed', keys[0]!.publicKey.slice(0, 2)]) {
      const err = await client.call('ls', { peer: prefix }).then(() => null, (e: unknown) => e as { code: string, message: string })
      expect(err).toMatchObject({ code: 'ERR_AMBIGUOUS', message: expect.stringContaining('matches 2 peers') })
    }
  } finally {
    client.close()
  }
  const one = await cliJson<LsResult>(['ls', '--peer', 'seed-a', '--control', box.control])
  expect(one.files.map((f) => f.blake2b)).toEqual([a.blake2b])
})
