/**
 * The receive window of a protected pair, exactly as bpf/afsteer.bpf.c's dedup_window() runs it:
 * 15-bit sequence numbers, a ring of DEDUP_WORDS × 64 bits (RFC 6479), copies up to DEDUP_WINDOW
 * behind the newest accepted one judged exactly, older ones dropped, and a fresh start after
 * DEDUP_IDLE_NS without a copy. Pure: the unit tests check it against a reference model and the
 * BPF_PROG_TEST_RUN tests check the kernel's verdicts against it.
 */

/** AFSTEER_SEQ_MARK: the marker bit beside the sequence number in the outer header. */
export const SEQ_MARK = 0x8000;
/** AFSTEER_SEQ_MASK: sequence numbers are 15 bits. */
export const SEQ_MASK = 0x7fff;
/** AFSTEER_DEDUP_WORDS */
export const DEDUP_WORDS = 32;
/** AFSTEER_DEDUP_WINDOW: how far behind the newest a copy is still judged exactly. */
export const DEDUP_WINDOW = (DEDUP_WORDS - 1) * 64;
/** AFSTEER_DEDUP_IDLE_NS */
export const DEDUP_IDLE_NS = 500_000_000n;

/** enum dedup_verdict */
export type DedupVerdict = 'new' | 'dup' | 'old';

/** The window state (the rx_* fields of struct afsteer_protect). */
export class DedupWindow {
  top = 0;
  valid = false;
  lastNs = 0n;
  readonly bits = new Array<bigint>(DEDUP_WORDS).fill(0n);

  /** Judges the copy with sequence number seq (15 bits) arriving at nowNs. */
  admit(seq: number, nowNs: bigint): DedupVerdict {
    seq &= SEQ_MASK;
    const bit = 1n << BigInt(seq & 63);
    const word = (seq >> 6) & (DEDUP_WORDS - 1);
    let v: DedupVerdict = 'new';
    // A copy timed before the newest (read on another CPU before the lock) is never idle.
    if (!this.valid || (nowNs > this.lastNs && nowNs - this.lastNs > DEDUP_IDLE_NS)) {
      this.bits.fill(0n);
      this.valid = true;
      this.top = seq;
      this.bits[word] = bit;
    } else {
      const fwd = (seq - this.top) & SEQ_MASK;
      if (fwd === 0) v = 'dup';
      else if (fwd <= SEQ_MASK >> 1) {
        const wd = ((seq >> 6) - (this.top >> 6)) & ((SEQ_MASK + 1) / 64 - 1);
        for (let i = 1; i <= DEDUP_WORDS; i++) if (i <= wd) this.bits[((this.top >> 6) + i) & (DEDUP_WORDS - 1)] = 0n;
        this.top = seq;
        this.bits[word]! |= bit;
      } else {
        const back = (this.top - seq) & SEQ_MASK;
        if (back >= DEDUP_WINDOW) v = 'old';
        else if (this.bits[word]! & bit) v = 'dup';
        else this.bits[word]! |= bit;
      }
    }
    if (v !== 'old' && nowNs > this.lastNs) this.lastNs = nowNs;
    return v;
  }
}
