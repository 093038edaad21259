import { createSocket } from 'node:dgram'
import HyperDHT from 'hyperdht'
import type { HostPort, KeyPair } from './types.js'

/** A new Ed25519 key pair for an agent's swarm identity. */
export function createKeyPair (): KeyPair {
  return HyperDHT.keyPair()
}

export interface BootstrapNode {
  /** The address agents pass as --bootstrap. */
  address (): HostPort
  destroy (): Promise<void>
}

export interface BootstrapInit {
  host: string
  /** 0: any free port. */
  port: number
  /** Other bootstrap nodes to join. Default: none, a DHT of our own. */
  bootstrap?: HostPort[]
  /** Persistent DHT nodes run beside the entry node. Default 2. */
  storageNodes?: number
}

/**
 * The DHT of a LAN without internet. A DHT node stores announcements only
 * once other nodes have confirmed it is reachable, which a lone node can
 * never get: so beside the entry node at the fixed address we run a few
 * persistent nodes that bootstrap from it and hold the announcements.
 */
export async function startBootstrapNode (init: BootstrapInit): Promise<BootstrapNode> {
  const entry = new HyperDHT({
    host: init.host,
    port: await resolvePort(init.host, init.port),
    anyPort: false,
    bootstrap: init.bootstrap ?? [],
    ephemeral: false,
    firewalled: false
  })
  const nodes = [entry]
  try {
    await entry.fullyBootstrapped()
    const { host, port } = entry.address()
    const connectHost = host === '0.0.0.0' ? '127.0.0.1' : host
    for (let i = 0; i < (init.storageNodes ?? 2); i++) {
      const node = new HyperDHT({ host: init.host, port: await resolvePort(init.host, 0), bootstrap: [{ host: connectHost, port }], ephemeral: false, firewalled: false })
      nodes.push(node)
      await node.fullyBootstrapped()
    }
  } catch (err) {
    for (const n of nodes.reverse()) await n.destroy()
    throw err
  }
  return {
    address: () => {
      const { host, port } = entry.address()
      return { host, port }
    },
    destroy: async () => {
      for (const n of [...nodes].reverse()) await n.destroy()
    }
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
