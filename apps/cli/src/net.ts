import { hostname, networkInterfaces, type NetworkInterfaceInfo } from 'node:os'

/** This box's non-loopback addresses (IPv4 first): what the other boxes of a LAN may reach it at. */
export function lanAddresses (): string[] {
  const all = Object.values(networkInterfaces()).flat().filter((a): a is NetworkInterfaceInfo => a !== undefined && !a.internal)
  // link-local IPv6 needs a scope id to be dialled: left out
  return [...all.filter((a) => a.family === 'IPv4'), ...all.filter((a) => a.family === 'IPv6' && !a.address.startsWith('fe80:'))].map((a) => a.address)
}

/** Whether `host` names this box: one of its addresses (loopback too), its host name, or localhost. */
export function isThisBox (host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1')
  if (h === 'localhost' || h === hostname().toLowerCase()) return true
  return Object.values(networkInterfaces()).flat().some((a) => a !== undefined && a.address.toLowerCase() === h)
}

export { hostPort } from '@distswarm/protocol'

/** Whether `host` is a wildcard bind address: the socket listens on every interface. */
export const isWildcard = (host: string): boolean => host === '0.0.0.0' || host === '::' || host === '[::]'
