import { hostPort, toHex, type FileEntry } from '@distswarm/protocol'
import type { Peer } from '@distswarm/swarm'
import type { FileInfo, PeerInfo } from './api.js'

export function fileInfo (e: FileEntry): FileInfo {
  return { name: e.name, size: e.size, blake2b: toHex(e.blake2b), sha512: toHex(e.sha512) }
}

/**
 * Where to reach a peer's agent: its host and the data port it announced.
 * The connection's own port says nothing useful: a DHT socket's UDP port,
 * or an ephemeral port for a TCP connection it dialled.
 */
function reachAt (p: Peer): string | null {
  const host = p.remoteHost
  if (host === null || p.remoteDataPort === 0) return p.remoteAddress
  return hostPort(host, p.remoteDataPort)
}

/** What the control API says of a connected peer. */
export function peerInfo (p: Peer, faults: number, path: PeerInfo['path'], traffic: { sent: number, received: number, relayed: number }, lastSeen: number | null): PeerInfo {
  return {
    name: p.name,
    publicKey: p.publicKeyHex,
    address: reachAt(p),
    files: p.files.size,
    bytesSent: traffic.sent,
    bytesReceived: traffic.received,
    bytesRelayed: traffic.relayed,
    connectedAt: new Date(p.connectedAt).toISOString(),
    faults,
    path,
    rttMs: p.rttMs,
    clockOffsetMs: p.clockOffsetMs,
    lastSeenAt: new Date(lastSeen ?? p.lastReceivedAt).toISOString()
  }
}
