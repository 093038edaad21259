/**
 * The Host header a request may carry. A web page the box's browser opens
 * can point a name of its own at 127.0.0.1 (DNS rebinding) and then read
 * the gateway as if it were its own site: the status page shows keys and
 * peer addresses. Such a request carries the page's name in Host; a real
 * client names an IP address, localhost, or this box.
 */
import { isIP } from 'node:net'
import { hostname } from 'node:os'

/** The host part of a Host header, without port or IPv6 brackets; null when malformed. */
function hostOf (header: string): string | null {
  if (header.startsWith('[')) {
    const end = header.indexOf(']')
    return end === -1 ? null : header.slice(1, end)
  }
  const colon = header.lastIndexOf(':')
  return colon === -1 ? header : header.slice(0, colon)
}

export class HostCheck {
  private readonly names: Set<string>
  private readonly domains: string[]

  /** `names`: the names this box answers to besides IP literals and localhost (default: its hostname). */
  constructor (names: readonly string[] = [hostname()]) {
    const lower = names.map((n) => n.toLowerCase()).filter((n) => n !== '')
    this.names = new Set(['localhost', ...lower, ...lower.map((n) => n.split('.')[0]!)])
    // This box's fully qualified names: "buildhost.lan" for hostname "buildhost".
    this.domains = [...this.names].filter((n) => n !== 'localhost').map((n) => `${n}.`)
  }

  /** Whether a request with this Host header (undefined: an HTTP/1.0 client that sent none) is meant for us. */
  allows (header: string | undefined): boolean {
    if (header === undefined) return true
    const host = hostOf(header.trim().toLowerCase())
    if (host === null || host === '') return false
    if (isIP(host) !== 0) return true
    const name = host.endsWith('.') ? host.slice(0, -1) : host
    return this.names.has(name) || name.endsWith('.localhost') || this.domains.some((d) => name.startsWith(d))
  }
}
