/** The little of hyperdht that `distswarm doctor` uses: a throwaway node that pings a bootstrap node. */
declare module 'hyperdht' {
  export interface HostPort { host: string, port: number }
  export default class HyperDHT {
    constructor (opts?: { bootstrap?: HostPort[], host?: string, port?: number, ephemeral?: boolean })
    ready (): Promise<void>
    /** Resolves when the node at `to` answers, rejects when it does not after dht-rpc's retries. */
    ping (to: HostPort): Promise<unknown>
    destroy (): Promise<void>
  }
}
