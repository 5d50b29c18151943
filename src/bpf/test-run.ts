/** BPF_PROG_TEST_RUN for tc programs: run a program on a packet in the kernel and get the result. */
import { ffi } from '../native/koffi';
import { check, libbpf } from './libbpf';

/** Outcome of one test run. */
export interface TestRunResult {
  /** The program's return value (TC_ACT_OK = 0, TC_ACT_SHOT = 2). */
  retval: number;
  /** The packet as the program left it. */
  data: Buffer;
  /** Average duration per repetition, ns. */
  durationNs: number;
  /** The __sk_buff after the run (when ctx was given). */
  ctx?: Buffer;
}

/** Size of struct __sk_buff (as of Linux 6.x uapi; the kernel accepts this prefix). */
export const SKB_CTX_SIZE = 192;
/** Offsets in struct __sk_buff that tests set. */
export const SkbCtx = { ifindex: 40, gsoSegs: 164, gsoSize: 176 } as const;

/** Runs prog on packet (an Ethernet frame) repeat times; ctx is an optional struct __sk_buff. */
export function progTestRun(progFd: number, packet: Buffer, opts: { repeat?: number; ctx?: Buffer; maxOut?: number } = {}): TestRunResult {
  const maxOut = opts.maxOut ?? packet.length + 256;
  const cells: unknown[] = [];
  const alloc = (n: number) => {
    const p = ffi.alloc('uint8_t', Math.max(n, 1));
    cells.push(p);
    return { p, view: new Uint8Array(ffi.view(p, Math.max(n, 1))), addr: ffi.address(p) };
  };
  try {
    const din = alloc(packet.length);
    din.view.set(packet);
    const dout = alloc(maxOut);
    const cin = opts.ctx ? alloc(opts.ctx.length) : undefined;
    const cout = opts.ctx ? alloc(opts.ctx.length) : undefined;
    if (cin && opts.ctx) cin.view.set(opts.ctx);
    const o = Buffer.alloc(80); // struct bpf_test_run_opts
    o.writeBigUInt64LE(80n, 0);
    o.writeBigUInt64LE(din.addr, 8);
    o.writeBigUInt64LE(dout.addr, 16);
    o.writeUInt32LE(packet.length, 24);
    o.writeUInt32LE(maxOut, 28);
    if (cin && cout && opts.ctx) {
      o.writeBigUInt64LE(cin.addr, 32);
      o.writeBigUInt64LE(cout.addr, 40);
      o.writeUInt32LE(opts.ctx.length, 48);
      o.writeUInt32LE(opts.ctx.length, 52);
    }
    o.writeInt32LE(opts.repeat ?? 1, 60);
    check('bpf_prog_test_run_opts', libbpf().testRun(progFd, o));
    const outLen = o.readUInt32LE(28);
    return {
      retval: o.readUInt32LE(56),
      data: Buffer.from(dout.view.subarray(0, outLen)),
      durationNs: o.readUInt32LE(64),
      ...(cout && opts.ctx ? { ctx: Buffer.from(cout.view.subarray(0, o.readUInt32LE(52))) } : {}),
    };
  } finally {
    for (const c of cells) ffi.free(c);
  }
}
