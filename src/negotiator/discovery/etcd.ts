/**
 * etcd discovery (discovery.etcd): for clusters spanning subnets that multicast does not cross.
 * Each node puts its record (protocol/record.ts: name, control addresses, port, families, MACed
 * with the cluster key) at prefix + node name under a lease it keeps alive, and watches the
 * prefix; the authenticated records are announcement targets (targets()), beside the static
 * peers. Peers are still made only by their authenticated announcement datagrams; a node whose
 * lease expires leaves targets() and then ages out as a silent peer does.
 *
 * One session at a time: grant a lease → put the record → read the prefix (resync) → watch
 * from the revision after that read; any failure (a lost lease, the watch disconnected, a put or
 * refresh failing) ends the session and, after a backoff, a new one starts from the top — so
 * when etcd comes back after a restart or an outage, the lease is re-created, the record re-put
 * and the watch resynced. While etcd is unreachable the last known targets stay (book.ts); one
 * warning per outage, one info line when it ends. Every await is bounded by opTimeoutMs.
 * etcd3 (and gRPC under it) is loaded with import() by start(), so nothing else carries it.
 */
import type { Etcd3, IKeyValue, Lease, Watcher } from 'etcd3';
import { log as defaultLog, type Logger } from '../../util/log';
import { MAX_OWN_FILE_BYTES, readConfiguredFile, UnsafePathError } from '../../util/safe-fs';
import type { EtcdDiscoveryConfig } from '../daemon-config';
import { encodeRecord, type NodeRecord, type SignedRecord } from '../protocol/record';
import { diffTargets, type EtcdTarget, RecordBook, type RecordCodec, type RefuseReason } from './book';

export type { EtcdTarget } from './book';

/** Key (under the prefix) of the authority's revocation list: not a node name, so never a record. */
export const REVOCATIONS_KEY = '.revocations';

/** What EtcdDiscovery needs: the config, the cluster key or a record codec, and this node's own record. */
export interface EtcdDiscoveryOptions {
  config: EtcdDiscoveryConfig;
  /** The cluster key (the one datagrams are MACed with), when no codec is given. */
  key?: Buffer;
  /** How records are written and judged (trust/record-codec.ts: identity records). */
  codec?: RecordCodec;
  /** etcd user and password to log in with (discovery.etcd.passwordFile). */
  login?: { username: string; password: string };
  /** Told the value at prefix + REVOCATIONS_KEY (the authority's revocation list) when read or changed. */
  onRevocations?: (value: Buffer) => void;
  /** This node's record: name, control addresses, port, families. */
  self: NodeRecord;
  /** Called after targets() changed (added, removed or changed targets). */
  onChange?: (targets: EtcdTarget[], diff: ReturnType<typeof diffTargets>) => void;
  /** Bound on every etcd call and every await here (default 5000 ms). */
  opTimeoutMs?: number;
  log?: Logger;
}

/** What `afsteerd status` can show about etcd discovery. */
export interface EtcdDiscoveryStatus {
  reachable: boolean;
  /** Ms since etcd became unreachable (absent while reachable). */
  outageMs?: number;
  outages: number;
  sessions: number;
  targets: number;
  puts: number;
  refused: Partial<Record<RefuseReason, number>>;
  /** Times this node's own record was found overwritten or deleted by someone else (and put back). */
  ownRecordRestored: number;
}

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 2000;
const MAX_LOGGED_REFUSALS = 256;

/** Rejects after ms with an error naming what timed out; the promise's own rejection keeps its cause. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.catch((err: unknown) => {
        throw new Error(`etcd: ${what} failed: ${String((err as Error)?.message ?? err)}`, { cause: err });
      }),
      new Promise<never>((_, rej) => {
        t = setTimeout(() => rej(new Error(`etcd: ${what} timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}

/** This node's side of etcd discovery: its record under a lease, and the others' records as targets. */
export class EtcdDiscovery {
  private readonly book: RecordBook;
  private readonly ownKey: string;
  private readonly epoch = BigInt(Date.now());
  private seq = 0n;
  /** This node's newest record value (put, or being put). */
  private ownLatest: string | undefined;
  /** etcd's revision after this node's newest put: watch events of its key up to it are old news. */
  private ownRev = 0n;
  private client: Etcd3 | undefined;
  private loopDone: Promise<void> | undefined;
  private stopped = false;
  /** Ends the running session (stop()). */
  private endSession: (() => void) | undefined;
  private failSession: ((err: unknown) => void) | undefined;
  private lease: Lease | undefined;
  private mod: typeof import('etcd3') | undefined;
  private wakeBackoff: (() => void) | undefined;
  private reachableSince: number | undefined;
  private outageSince: number | undefined;
  private expireTimer: NodeJS.Timeout | undefined;
  private readonly loggedRefusals = new Set<string>();
  private readonly T: number;
  private readonly log: Logger;
  private last: EtcdTarget[] = [];
  private readonly counts = { outages: 0, sessions: 0, puts: 0, ownRecordRestored: 0 };
  private firstOutcome: (() => void) | undefined;

  constructor(private readonly o: EtcdDiscoveryOptions) {
    this.T = o.opTimeoutMs ?? 5000;
    this.log = o.log ?? defaultLog;
    const c = o.config;
    this.ownKey = c.prefix + o.self.node;
    this.book = new RecordBook({
      key: o.key,
      codec: o.codec,
      prefix: c.prefix,
      self: o.self.node,
      maxAgeMs: c.maxRecordAgeS * 1000,
      // Long enough for every node to re-put after etcd came back empty.
      graceMs: Math.max(2 * c.leaseTtlS * 1000, 10_000),
    });
    // Fails here, not at the first put, when the own record is not one a peer would accept.
    this.encode({ ...o.self, epoch: this.epoch, seq: 0n, writtenAt: Date.now() });
  }

  /**
   * Loads etcd3, connects, and starts the session loop; resolves after the first session is up
   * or has failed (etcd down at start-up is not an error: the loop keeps trying), within
   * opTimeoutMs. Throws for what retrying cannot fix: an unreadable TLS file, no etcd3 module.
   */
  async start(): Promise<void> {
    if (this.client || this.stopped) throw new Error('etcd discovery: start() called twice');
    const c = this.o.config;
    // Read as afsteer's own files (safe-fs readConfiguredFile): never a FIFO or a device, nothing
    // of another user's, at most 1 MiB, the private key readable by its owner only.
    const read = (k: 'ca' | 'cert' | 'key') => {
      const p = c[k];
      if (p === undefined) return undefined;
      try {
        return readConfiguredFile(p, MAX_OWN_FILE_BYTES, k === 'key');
      } catch (err) {
        const why = err instanceof UnsafePathError ? err.message : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);
        throw new Error(`discovery.etcd.${k} ${p}: ${why}`, { cause: err });
      }
    };
    const ca = read('ca');
    const cert = read('cert');
    const key = read('key');
    let mod: typeof import('etcd3');
    try {
      mod = await withTimeout(import('etcd3'), this.T, 'loading the etcd3 module');
    } catch (err) {
      throw new Error('etcd discovery: cannot load the etcd3 client', { cause: err });
    }
    const https = c.endpoints.some((u) => u.startsWith('https:'));
    let cockatiel: typeof import('cockatiel');
    try {
      cockatiel = await withTimeout(import('cockatiel'), this.T, 'loading the cockatiel module');
    } catch (err) {
      throw new Error("etcd discovery: cannot load cockatiel (etcd3's fault-handling library)", { cause: err });
    }
    this.mod = mod;
    const recoverable = cockatiel.handleWhen(mod.isRecoverableError);
    this.client = new mod.Etcd3({
      hosts: c.endpoints,
      dialTimeout: this.T,
      ...(this.o.login ? { auth: { ...this.o.login, callOptions: () => ({ deadline: Date.now() + this.T }) } } : {}),
      // Back soon after etcd is: gRPC's reconnect backoff (default up to 120 s), the watch
      // stream's (default up to 30 s) and the per-host circuit breaker (default open 5 s) are
      // all kept short; the session loop is the one retrying.
      grpcOptions: {
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.min_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': BACKOFF_MAX_MS,
      },
      faultHandling: {
        global: cockatiel.retry(recoverable, { maxAttempts: Math.max(0, c.endpoints.length - 1) }),
        host: () => cockatiel.circuitBreaker(recoverable, { halfOpenAfter: 1000, breaker: new cockatiel.ConsecutiveBreaker(3) }),
        // etcd3's type says IBackoff; it calls .next() on it, as on its own default (a factory).
        watchBackoff: new cockatiel.ExponentialBackoff({
          initialDelay: 200,
          maxDelay: BACKOFF_MAX_MS,
        }) as unknown as import('cockatiel').IBackoff<unknown>,
      },
      ...(https
        ? {
            credentials: {
              rootCertificate: ca ?? Buffer.alloc(0),
              ...(key ? { privateKey: key } : {}),
              ...(cert ? { certChain: cert } : {}),
            },
          }
        : {}),
      // A deadline on every unary call; the watch and keepalive streams are watched by the session.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + this.T }),
    });
    this.expireTimer = setInterval(() => this.expire(), 1000);
    this.expireTimer.unref();
    const first = new Promise<void>((resolve) => (this.firstOutcome = resolve));
    this.loopDone = this.loop();
    await withTimeout(first, this.T * 3, 'first session').catch(() => undefined);
  }

  /** The current authenticated peer records (never this node's own), by node name. */
  targets(): EtcdTarget[] {
    return this.book.targets();
  }

  /** Counters and state for status output. */
  status(): EtcdDiscoveryStatus {
    return {
      reachable: this.reachableSince !== undefined,
      ...(this.outageSince !== undefined ? { outageMs: Math.round(performance.now() - this.outageSince) } : {}),
      ...this.counts,
      targets: this.book.targets().length,
      refused: { ...this.book.refused },
    };
  }

  /** Ends the session, revokes this node's lease (its record goes at once) and closes the client; bounded by opTimeoutMs. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.expireTimer);
    this.endSession?.();
    this.wakeBackoff?.();
    if (this.loopDone)
      await withTimeout(this.loopDone, this.T * 3, 'stopping').catch((err) =>
        this.log.warn('etcd discovery did not stop cleanly', { error: describe(err) }),
      );
    this.client?.close();
  }

  // ---- the session loop -----------------------------------------------------------------------

  private async loop(): Promise<void> {
    let backoff = BACKOFF_MIN_MS;
    while (!this.stopped) {
      const t0 = performance.now();
      const err = await this.session().then(
        () => undefined,
        (e: unknown) => e ?? new Error('etcd: session ended'),
      );
      this.reachableSince = undefined;
      if (this.stopped) break;
      this.outage(err);
      this.firstOutcome?.();
      this.firstOutcome = undefined;
      // A session that ran a while was a recovery: start the backoff again from the bottom.
      if (performance.now() - t0 > 10_000) backoff = BACKOFF_MIN_MS;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, backoff * (0.75 + Math.random() / 2));
        this.wakeBackoff = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wakeBackoff = undefined;
      backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
    }
    // The record goes at once, rather than when its lease runs out.
    const lease = this.lease;
    this.lease = undefined;
    if (lease) {
      lease.removeAllListeners();
      lease.on('lost', () => undefined);
      await withTimeout(lease.revoke(), this.T, 'revoking the lease').catch((err) =>
        this.log.warn('etcd: could not revoke the lease (the record goes when it expires)', { error: describe(err) }),
      );
    }
  }

  /**
   * The lease, granted when there is none. It outlives sessions (etcd3 keeps it alive and
   * retries by itself) until it is lost — expired while etcd was out of reach for 2 TTLs, or
   * unknown to etcd — and is then granted anew by the next session.
   */
  private async ensureLease(): Promise<Lease> {
    if (this.lease) return this.lease;
    const lease = this.client!.lease(this.o.config.leaseTtlS, { autoKeepAlive: true });
    lease.on('lost', (err) => {
      if (this.lease === lease) this.lease = undefined;
      this.failSession?.(new Error('etcd: lease lost', { cause: err }));
    });
    try {
      await withTimeout(lease.grant(), this.T, 'granting the lease');
    } catch (err) {
      lease.removeAllListeners();
      lease.on('lost', () => undefined);
      lease.release();
      throw err;
    }
    this.lease = lease;
    return lease;
  }

  /** One session: resolves when stopped, rejects on a failure. */
  private async session(): Promise<void> {
    const client = this.client!;
    const c = this.o.config;
    this.counts.sessions++;
    let watcher: Watcher | undefined;
    let refresh: NodeJS.Timeout | undefined;
    let fail!: (err: unknown) => void;
    let done!: () => void;
    const ended = new Promise<void>((resolve, reject) => {
      fail = reject;
      done = resolve;
    });
    ended.catch(() => undefined);
    this.failSession = fail;
    this.endSession = done;
    try {
      const lease = await this.ensureLease();
      await this.putOwn(lease);
      const res = await withTimeout(client.getAll().prefix(c.prefix).exec(), this.T, 'reading the prefix');
      const revocations = res.kvs.find((kv) => kv.key.toString('latin1') === c.prefix + REVOCATIONS_KEY);
      if (revocations) this.o.onRevocations?.(revocations.value);
      this.book.resync(
        res.kvs
          .filter((kv) => kv.key.toString('latin1') !== this.ownKey && kv.key.toString('latin1') !== c.prefix + REVOCATIONS_KEY)
          .map((kv) => ({ key: kv.key.toString('latin1'), value: kv.value })),
        Date.now(),
      );
      this.changed();
      const w = client
        .watch()
        .prefix(c.prefix)
        .startRevision(String(BigInt(res.header.revision) + 1n));
      watcher = await withTimeout(w.create(), this.T, 'starting the watch');
      watcher.on('put', (kv) => this.onPut(kv, lease, fail));
      watcher.on('delete', (kv) => this.onDelete(kv, lease, fail));
      watcher.on('disconnected', (err) => fail(new Error('etcd: watch disconnected', { cause: err })));
      watcher.on('error', (err) => fail(new Error('etcd: watch failed', { cause: err })));
      // Re-put with a new writtenAt well within maxRecordAgeS, so readers never find it stale.
      refresh = setInterval(() => this.putOwn(lease).catch(fail), (c.maxRecordAgeS * 1000) / 4);
      this.reachable();
      if (this.stopped) done();
      await ended;
    } finally {
      this.endSession = undefined;
      this.failSession = undefined;
      clearInterval(refresh);
      if (watcher) {
        watcher.removeAllListeners();
        watcher.on('error', () => undefined);
        await withTimeout(watcher.cancel(), this.T, 'cancelling the watch').catch(() => undefined);
      }
    }
  }

  private encode(r: SignedRecord): string {
    if (this.o.codec) return this.o.codec.encode(r);
    if (!this.o.key) throw new Error('etcd discovery needs the cluster key or a record codec');
    return encodeRecord(this.o.key, r);
  }

  /** Puts this node's record (a new seq each time) on the lease. */
  private async putOwn(lease: Lease): Promise<void> {
    this.seq++;
    const v = this.encode({ ...this.o.self, epoch: this.epoch, seq: this.seq, writtenAt: Date.now() });
    this.ownLatest = v;
    try {
      const res = await withTimeout(lease.put(this.ownKey).value(v).exec(), this.T, `putting ${this.ownKey}`);
      // Not a max: an etcd restored from an older backup counts revisions from lower again.
      this.ownRev = BigInt(res.header.revision);
    } catch (err) {
      // etcd no longer knows the lease (it expired during an outage): grant a new one next session.
      if (this.lease === lease && (lease.revoked() || hasCause(err, this.mod!.EtcdLeaseInvalidError))) {
        this.lease = undefined;
        lease.removeAllListeners();
        lease.on('lost', () => undefined);
        lease.release();
      }
      throw err;
    }
    this.counts.puts++;
  }

  private onPut(kv: IKeyValue, lease: Lease, fail: (err: unknown) => void): void {
    const key = kv.key.toString('latin1');
    if (key === this.o.config.prefix + REVOCATIONS_KEY) {
      this.o.onRevocations?.(kv.value);
      return;
    }
    if (key === this.ownKey) {
      // A write after this node's newest put that is not that put: someone else's (a forgery, or
      // an old record of ours put back). Events up to that put's revision are old news.
      if (BigInt(kv.mod_revision) > this.ownRev && kv.value.toString('latin1') !== this.ownLatest)
        this.restoreOwn(lease, fail, 'overwritten');
      return;
    }
    const r = this.book.put(key, kv.value, Date.now());
    if (typeof r === 'object') {
      const k = `${key}|${r.refused}`;
      const first = !this.loggedRefusals.has(k) && this.loggedRefusals.size < MAX_LOGGED_REFUSALS;
      if (first) this.loggedRefusals.add(k);
      this.log[first ? 'warn' : 'debug']('etcd: record refused', { key: printable(key), reason: r.refused });
      return;
    }
    if (r === 'added' || r === 'changed') this.changed();
  }

  private onDelete(kv: IKeyValue, lease: Lease, fail: (err: unknown) => void): void {
    const key = kv.key.toString('latin1');
    if (key === this.ownKey) {
      // Our lease expiring also ends here; then 'lost' ends the session, and a failed put does too.
      if (BigInt(kv.mod_revision) > this.ownRev) this.restoreOwn(lease, fail, 'deleted');
      return;
    }
    if (this.book.delete(key)) this.changed();
  }

  private restoreOwn(lease: Lease, fail: (err: unknown) => void, how: string): void {
    this.counts.ownRecordRestored++;
    this.log.warn(`etcd: this node's record was ${how}; putting it back`, { key: this.ownKey });
    this.putOwn(lease).catch(fail);
  }

  // ---- state -------------------------------------------------------------------------------

  private expire(): void {
    const gone = this.book.expire(Date.now(), this.reachableSince === undefined ? undefined : performance.now() - this.reachableSince);
    if (gone.length) this.changed();
  }

  private changed(): void {
    const next = this.book.targets();
    const d = diffTargets(this.last, next);
    this.last = next;
    if (!d.added.length && !d.removed.length && !d.changed.length) return;
    this.log.info('etcd: targets changed', { ...d, targets: next.length });
    try {
      this.o.onChange?.(next, d);
    } catch (err) {
      this.log.error('etcd: onChange failed', { error: describe(err) });
    }
  }

  private reachable(): void {
    this.reachableSince = performance.now();
    if (this.outageSince !== undefined) {
      this.log.info('etcd reachable again: record re-put, watch resynced', {
        outageMs: Math.round(performance.now() - this.outageSince),
        targets: this.book.targets().length,
      });
      this.outageSince = undefined;
    } else if (this.counts.sessions === 1) {
      this.log.info('etcd discovery up', { endpoints: this.o.config.endpoints, key: this.ownKey, targets: this.book.targets().length });
    }
    this.firstOutcome?.();
    this.firstOutcome = undefined;
  }

  private outage(err: unknown): void {
    if (this.outageSince !== undefined) {
      this.log.debug('etcd still unreachable', { error: describe(err) });
      return;
    }
    this.outageSince = performance.now();
    this.counts.outages++;
    this.log.warn('etcd unreachable: keeping the last known targets, retrying', {
      endpoints: this.o.config.endpoints,
      error: describe(err),
      targets: this.book.targets().length,
    });
  }
}

function hasCause(err: unknown, cls: new (...a: never[]) => Error): boolean {
  for (let e = err, i = 0; e !== undefined && i < 6; e = (e as { cause?: unknown })?.cause, i++) if (e instanceof cls) return true;
  return false;
}

/** An error and its causes on one line. */
function describe(err: unknown): string {
  const parts: string[] = [];
  for (let e = err, i = 0; e !== undefined && i < 4; e = (e as { cause?: unknown })?.cause, i++) {
    const m = String((e as Error)?.message ?? e);
    if (!parts.some((p) => p.includes(m))) parts.push(m);
  }
  return parts.join(': ');
}

/** A key as it may be logged (etcd keys are arbitrary bytes). */
function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.slice(0, 300).replace(/[^\x20-\x7e]/g, '?');
}
