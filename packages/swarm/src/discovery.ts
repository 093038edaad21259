import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import HyperDHT from 'hyperdht'
import Hyperswarm, { type PeerDiscovery } from 'hyperswarm'
import { toHex, type Logger } from '@distswarm/protocol'
import { resolvePort } from './dht.js'
import type { Problems } from './problems.js'
import type { HostPort, KeyPair, SecretStream } from './types.js'

// Look for peers again after rediscoverMs, twice that, … then every this
// often: agents that start at the same moment can miss each other's
// announcements, and meeting one of them says nothing about the others.
const MAX_REDISCOVER_MS = 5 * 60_000

// How often an agent checks that the DHT still lists it under the topic (and that its bootstrap nodes answer).
const ANNOUNCEMENT_CHECK_MS = 10_000

const BOOTSTRAP_UNREACHABLE = 'no answer from the bootstrap node: a wrong --bootstrap address or port, the node is not running (distswarm bootstrap), or a firewall drops UDP'
const BOOTSTRAP_UNRESOLVED = 'the name does not resolve: a typo in --bootstrap, or no DNS for it'

export interface DiscoveryInit {
  bootstrap: HostPort[]
  host: string
  port: number
  keyPair: KeyPair
  firewalled: boolean
  maxPeers: number
  topic: Buffer
  rediscoverMs: number
  /** True for a remote key to refuse. */
  firewall: (remotePublicKey: Buffer) => boolean
  onConnection: (stream: SecretStream) => void
  logger: Logger
  problems: Problems
}

/**
 * The hyperswarm side of the swarm: the DHT node, the topic joined as client
 * and server, rediscovery on a doubling timer, and a periodic check that the
 * DHT still lists us (re-announcing when it does not), that the bootstrap
 * nodes answer (a problem when one does not) and that no ban outlives its end.
 */
export class Discovery {
  private readonly init: DiscoveryInit
  private readonly log: Logger
  private dht: HyperDHT | null = null
  private hyperswarm: Hyperswarm | null = null
  private session: PeerDiscovery | null = null
  private rediscoverMs: number
  private rediscoverTimer: NodeJS.Timeout | null = null
  private announcementTimer: NodeJS.Timeout | null = null
  private stopped = false

  constructor (init: DiscoveryInit) {
    this.init = init
    this.log = init.logger
    this.rediscoverMs = init.rediscoverMs
  }

  /** Joins the topic; resolves once our announcement is on the DHT (or stop() was called meanwhile). */
  async start (): Promise<void> {
    const { bootstrap, host, keyPair, firewalled, maxPeers, topic } = this.init
    const port = await resolvePort(host, this.init.port)
    if (this.stopped) return
    this.dht = new HyperDHT({ bootstrap, host, port, keyPair, firewalled })
    this.hyperswarm = new Hyperswarm({ dht: this.dht, keyPair, maxPeers, firewall: this.init.firewall })
    this.hyperswarm.on('connection', (stream: SecretStream) => this.init.onConnection(stream))
    void this.checkBootstrap()
    this.session = this.hyperswarm.join(topic, { server: true, client: true })
    await this.session.flushed()
    if (this.stopped) return
    this.scheduleRediscover()
    this.watchAnnouncement()
    this.log.debug('swarm.joined', { topic: toHex(topic).slice(0, 16), key: toHex(keyPair.publicKey).slice(0, 16) })
  }

  /** The DHT socket's address. */
  address (): HostPort | null {
    return this.dht ? this.dht.address() : null
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.rediscoverTimer) clearTimeout(this.rediscoverTimer)
    if (this.announcementTimer) clearTimeout(this.announcementTimer)
    await this.hyperswarm?.destroy()
    await this.dht?.destroy()
  }

  /** Pings every bootstrap node; one that does not answer is a problem. */
  private async checkBootstrap (): Promise<void> {
    const dht = this.dht
    await Promise.all(this.init.bootstrap.map(async (node) => {
      const address = `${node.host}:${node.port}`
      try {
        const host = isIP(node.host) ? node.host : (await lookup(node.host)).address
        if (this.stopped) return
        await dht?.ping({ host, port: node.port })
      } catch (err) {
        if (this.stopped) return
        const code = (err as { code?: string }).code
        this.init.problems.report('bootstrap.unreachable', address, code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? BOOTSTRAP_UNRESOLVED : BOOTSTRAP_UNREACHABLE)
      }
    }))
  }

  private scheduleRediscover (): void {
    if (this.stopped) return
    this.rediscoverTimer = setTimeout(() => {
      // Both flags: a session's refresh sets its mode, and server: false would unannounce us.
      this.session?.refresh({ client: true, server: true }).catch((err: Error) => this.log.debug('swarm.rediscovery-failed', { why: err.message }))
      this.rediscoverMs = Math.min(this.rediscoverMs * 2, MAX_REDISCOVER_MS)
      this.scheduleRediscover()
    }, this.rediscoverMs)
    this.rediscoverTimer.unref()
  }

  /**
   * Every ANNOUNCEMENT_CHECK_MS, looks ourselves up under the topic; when the
   * DHT no longer lists us, announces and looks for peers at once. A
   * bootstrap node that was restarted brings up an empty DHT (the nodes that
   * held the announcements are gone), and the next scheduled rediscovery may
   * be MAX_REDISCOVER_MS away: until then an agent that joins finds nobody.
   */
  private watchAnnouncement (): void {
    if (this.stopped) return
    this.announcementTimer = setTimeout(() => {
      this.liftEndedBans()
      void Promise.all([this.reannounceIfForgotten(), this.checkBootstrap()]).finally(() => this.watchAnnouncement())
    }, ANNOUNCEMENT_CHECK_MS)
    this.announcementTimer.unref()
  }

  /**
   * Hyperswarm marks a key that our firewall refused as banned, and never
   * clears that mark itself: a ban of ten minutes would last until restart.
   * A peer whose ban has ended is let in again here, and we look for peers
   * at once so that the two meet.
   */
  private liftEndedBans (): void {
    let lifted = 0
    for (const peer of this.hyperswarm?.peers.values() ?? []) {
      if (peer.banned && !this.init.firewall(peer.publicKey)) {
        peer.ban(false)
        lifted++
      }
    }
    if (lifted === 0 || this.stopped) return
    this.log.info('swarm.ban-lifted', { peers: lifted })
    this.session?.refresh({ client: true, server: true }).catch((err: Error) => this.log.debug('swarm.rediscovery-failed', { why: err.message }))
  }

  private async reannounceIfForgotten (): Promise<void> {
    const dht = this.dht
    if (this.stopped || !dht) return
    try {
      for await (const reply of dht.lookup(this.init.topic)) {
        if (reply.peers.some((p) => p.publicKey.equals(this.init.keyPair.publicKey))) return
      }
    } catch (err) {
      this.log.debug('swarm.announcement-check-failed', { why: (err as Error).message })
    }
    if (this.stopped) return
    this.log.info('swarm.reannounce', { why: 'the DHT no longer lists us under the topic' })
    await this.session?.refresh({ client: true, server: true }).catch((err: Error) => this.log.warn('swarm.reannounce-failed', { why: err.message }))
  }
}
