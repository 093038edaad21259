import { toHex, type FileEntry } from '@distswarm/protocol'
import type { Peer } from '@distswarm/swarm'
import type { FileInfo, PeerInfo } from './api.js'

export function fileInfo (e: FileEntry): FileInfo {
  return { name: e.name, size: e.size, blake2b: toHex(e.blake2b), sha512: toHex(e.sha512) }
}

export const byName = (a: { name: string }, b: { name: string }): number => a.name < b.name ? -1 : a.name > b.name ? 1 : 0

/** What the control API says of a connected peer. */
export function peerInfo (p: Peer, faults: number, path: PeerInfo['path'], traffic: { sent: number, received: number }, lastSeen: number | null): PeerInfo {
  return {
    name: p.name,
    publicKey: p.publicKeyHex,
    address: p.remoteAddress,
    files: p.files.size,
    bytesSent: traffic.sent,
    bytesReceived: traffic.received,
    connectedAt: new Date(p.connectedAt).toISOString(),
    faults,
    path,
    rttMs: p.rttMs,
    lastSeenAt: new Date(lastSeen ?? p.lastReceivedAt).toISOString()
  }
}
