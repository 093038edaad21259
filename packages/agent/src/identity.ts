import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createKeyPair, type KeyPair } from '@distswarm/swarm'
import { AgentError } from './errors.js'

const FILE = 'identity.json'

/**
 * The agent's swarm key pair, created on first start and kept in the state
 * dir (mode 0600), so that peers see the same agent across restarts.
 */
export async function loadOrCreateIdentity (stateDir: string): Promise<KeyPair> {
  const path = join(stateDir, FILE)
  await mkdir(stateDir, { recursive: true, mode: 0o700 })
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    const keyPair = createKeyPair()
    const json = JSON.stringify({ publicKey: keyPair.publicKey.toString('hex'), secretKey: keyPair.secretKey.toString('hex') })
    // 'wx': never replace an identity another process just wrote
    await writeFile(path, json + '\n', { mode: 0o600, flag: 'wx' })
    return keyPair
  }
  let parsed: { publicKey?: unknown, secretKey?: unknown }
  try {
    parsed = JSON.parse(text) as typeof parsed
  } catch {
    throw AgentError.BAD_IDENTITY(path, 'not valid JSON')
  }
  const { publicKey, secretKey } = parsed
  if (typeof publicKey !== 'string' || !/^[0-9a-f]{64}$/.test(publicKey) ||
      typeof secretKey !== 'string' || !/^[0-9a-f]{128}$/.test(secretKey)) {
    throw AgentError.BAD_IDENTITY(path, 'expected hex publicKey (32 bytes) and secretKey (64 bytes)')
  }
  return { publicKey: Buffer.from(publicKey, 'hex'), secretKey: Buffer.from(secretKey, 'hex') }
}
