import { createSocket } from 'node:dgram'
import HyperDHT from 'hyperdht'
import type { HostPort, KeyPair } from './types.js'

/** A new Ed25519 key pair for an agent's swarm identity. */
export function createKeyPair (): KeyPair {
  return HyperDHT.keyPair()
}

export interface BootstrapNode {
  address (): HostPort
  destroy (): Promise<void>
}

/**
 * A DHT bootstrap node for a LAN without internet: a persistent, unfirewalled
 * node at a fixed address, the first one every agent contacts.
 */
export async function startBootstrapNode (opts: { host: string, port: number, bootstrap?: HostPort[] }): Promise<BootstrapNode> {
  const node = new HyperDHT({
    host: opts.host,
    port: await resolvePort(opts.host, opts.port),
    anyPort: false,
    bootstrap: opts.bootstrap ?? [],
    ephemeral: false,
    firewalled: false
  })
  await node.ready()
  return {
    address: () => node.address(),
    destroy: () => node.destroy()
  }
}

/**
 * hyperdht reads port 0 as "its default port 49737"; to get any free port
 * instead, ask the OS for one. (Another process may take it before we bind:
 * then the bind fails loudly, it never lands elsewhere silently.)
 */
export async function resolvePort (host: string, port: number): Promise<number> {
  if (port !== 0) return port
  const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4')
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject)
    sock.bind(0, host, () => resolve())
  })
  const free = sock.address().port
  await new Promise<void>((resolve) => sock.close(() => resolve()))
  return free
}
