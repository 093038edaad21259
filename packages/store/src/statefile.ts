/**
 * The store's state files (the hash index, the cache use times): one writer
 * that saves each of them a while after it changed, one save at a time,
 * atomically, and says so at `warn` when it cannot.
 */
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Logger } from '@distswarm/protocol'

/** Test hook: ms to wait between a state file's fsync and its rename, so a test can kill the process in that window. */
const RENAME_DELAY_ENV = 'DISTSWARM_TEST_STATE_RENAME_DELAY_MS'
const TEMP_MARK = '.tmp-'

/**
 * Replaces `final` (mode 0600, its dir made if need be) by way of a synced
 * temporary file and rename(2), then syncs the dir: after a crash at any
 * moment the name holds the old bytes or the new ones, never a mix.
 */
export async function writeFileAtomic (final: string, buf: Buffer): Promise<void> {
  const dir = dirname(final)
  await mkdir(dir, { recursive: true })
  const temp = `${final}${TEMP_MARK}${process.pid}`
  try {
    const fh = await open(temp, 'w', 0o600)
    try {
      // write(), not writeFile(): a short write is carried on here, and a test's full-disk hook sees it.
      for (let done = 0; done < buf.length;) done += (await fh.write(buf, done, buf.length - done, done)).bytesWritten
      await fh.sync()
    } finally {
      await fh.close()
    }
    const delay = Number(process.env[RENAME_DELAY_ENV] ?? 0)
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
    await rename(temp, final)
  } catch (err) {
    await rm(temp, { force: true })
    throw err
  }
  // The rename itself lasts only once the dir's entry is on disk.
  const dh = await open(dir, 'r').catch(() => null)
  await dh?.sync().catch(() => {})
  await dh?.close()
}

export interface StateFileInit {
  /** File name inside the state dir. */
  name: string
  /** What it holds, for the log: 'hash index'. */
  what: string
  /** A change is saved this long after it (changes meanwhile ride along). */
  delayMs: number
  /** And no sooner than this long after the previous save. Default 0. */
  minIntervalMs?: number
  /** The bytes to write, taken when the save runs. */
  encode: () => Buffer
}

/** One state file of a StateWriter. */
export class StateFile {
  readonly name: string
  readonly path: string | null
  readonly what: string
  /** @internal */ readonly delayMs: number
  /** @internal */ readonly minIntervalMs: number
  /** @internal */ readonly encode: () => Buffer
  /** @internal */ due: number | null = null
  /** @internal */ lastSave = 0
  /** @internal */ failing = false
  dirty = false
  private readonly writer: StateWriter

  /** @internal */
  constructor (writer: StateWriter, path: string | null, init: StateFileInit) {
    this.writer = writer
    this.name = init.name
    this.path = path
    this.what = init.what
    this.delayMs = init.delayMs
    this.minIntervalMs = init.minIntervalMs ?? 0
    this.encode = init.encode
  }

  /** Something in it changed: save it soon. */
  markDirty (): void {
    this.dirty = true
    this.writer.schedule(this)
  }

  /** Saves now when dirty; never rejects (a failure is logged and the file stays dirty). */
  save (): Promise<void> {
    return this.writer.save(this)
  }
}

/**
 * Saves state files after their changes: one timer for all of them (set to
 * the earliest one due), one save at a time. Without a state dir it keeps
 * nothing. start() arms the timer, stop() saves what is dirty; both idempotent.
 */
export class StateWriter {
  readonly stateDir: string | null
  private readonly logger: Logger
  private readonly files: StateFile[] = []
  private timer: NodeJS.Timeout | null = null
  private chain: Promise<void> = Promise.resolve()
  private running = false

  constructor (init: { stateDir: string | null, logger: Logger }) {
    this.stateDir = init.stateDir
    this.logger = init.logger
  }

  add (init: StateFileInit): StateFile {
    const file = new StateFile(this, this.stateDir === null ? null : join(this.stateDir, init.name), init)
    this.files.push(file)
    return file
  }

  /** Removes temporary files a killed run left, and saves changes from now on. */
  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    const now = Date.now()
    for (const f of this.files) f.lastSave = now
    if (this.stateDir !== null) {
      const names = await readdir(this.stateDir).catch(() => [])
      for (const name of names) {
        if (this.files.some((f) => name.startsWith(f.name + TEMP_MARK))) await rm(join(this.stateDir, name), { force: true })
      }
    }
    for (const f of this.files) if (f.dirty) this.schedule(f)
  }

  /** Stops the timer and saves every dirty file. */
  async stop (): Promise<void> {
    this.running = false
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    for (const f of this.files) f.due = null
    await Promise.all(this.files.map((f) => this.save(f)))
  }

  /** @internal */
  schedule (file: StateFile): void {
    if (file.path === null || !this.running || file.due !== null) return
    file.due = Math.max(Date.now() + file.delayMs, file.lastSave + file.minIntervalMs)
    this.arm()
  }

  private arm (): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    let next = Infinity
    for (const f of this.files) if (f.due !== null && f.due < next) next = f.due
    if (next === Infinity || !this.running) return
    this.timer = setTimeout(() => this.fire(), Math.max(0, next - Date.now()))
    // Saving alone never keeps the process up; stop() saves what is left.
    this.timer.unref()
  }

  private fire (): void {
    this.timer = null
    const now = Date.now()
    for (const f of this.files) {
      if (f.due === null || f.due > now) continue
      f.due = null
      void this.save(f)
    }
    this.arm()
  }

  /** @internal */
  save (file: StateFile): Promise<void> {
    const path = file.path
    if (path === null) return this.chain
    this.chain = this.chain.then(async () => {
      if (!file.dirty) return
      file.dirty = false
      const started = file.lastSave = Date.now()
      try {
        const buf = file.encode()
        await writeFileAtomic(path, buf)
        if (file.failing) this.logger.info('state.saved-again', { file: path })
        file.failing = false
        this.logger.debug('state.saved', { what: file.what, file: path, bytes: buf.length, ms: Date.now() - started })
      } catch (err) {
        file.dirty = true
        // Once per failing stretch: a full disk would otherwise warn at every save.
        if (!file.failing) this.logger.warn('state.save-failed', { what: file.what, file: path, error: (err as Error).message })
        else this.logger.debug('state.save-failed', { what: file.what, file: path, error: (err as Error).message })
        file.failing = true
      }
    })
    return this.chain
  }
}
