import { BlockList, isIP } from 'node:net'
import { GatewayError } from './errors.js'

/** Who may ask by default: this box only. A LAN address needs its subnet listed too. */
export const DEFAULT_ALLOW: readonly string[] = ['127.0.0.0/8', '::1']

/** `::ffff:10.0.0.1` (an IPv4 client of a dual-stack socket) as `10.0.0.1`. */
const unmapped = (address: string): string => address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address

/** The client addresses allowed: each entry an IP address or `ADDR/PREFIX` subnet. */
export class AllowList {
  private readonly list = new BlockList()
  readonly entries: readonly string[]

  constructor (entries: readonly string[]) {
    this.entries = [...entries]
    for (const entry of entries) {
      const [addr = '', prefix, ...rest] = entry.split('/')
      const family = isIP(addr)
      const bits = prefix === undefined ? null : Number(prefix)
      const max = family === 6 ? 128 : 32
      if (family === 0 || rest.length > 0 || (bits !== null && (!/^\d+$/.test(prefix!) || bits > max))) {
        throw GatewayError.INVALID_OPTION('allow', `${JSON.stringify(entry)} is not an IP address or ADDR/PREFIX subnet`)
      }
      const type = family === 6 ? 'ipv6' : 'ipv4'
      if (bits === null) this.list.addAddress(addr, type)
      else this.list.addSubnet(addr, bits, type)
    }
  }

  allows (address: string | undefined): boolean {
    if (address === undefined) return false
    const a = unmapped(address)
    const family = isIP(a)
    return family !== 0 && this.list.check(a, family === 6 ? 'ipv6' : 'ipv4')
  }
}
