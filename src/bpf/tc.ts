/** Attaching, querying and detaching the afsteer tc programs on a link's clsact hook (libbpf's bpf_tc_* API). */
import { check, libbpf } from './libbpf';

/** clsact attach points (enum bpf_tc_attach_point). */
export const TcPoint = { ingress: 1, egress: 2 } as const;
export type TcPointName = keyof typeof TcPoint;
/** clsact parents as netlink reports them. */
export const TC_PARENT = { ingress: 0xfffffff2, egress: 0xfffffff3 } as const;
/** Handle and priority afsteer's filters always use, so they can be found again. */
export const AFSTEER_TC_HANDLE = 0xaf;
export const AFSTEER_TC_PRIORITY = 0xaf;
const BPF_TC_F_REPLACE = 1;
const ENOENT = 2;
const EEXIST = 17;
const EINVAL = 22;
const ENODEV = 19;

function hook(ifindex: number, point: number): Buffer {
  const b = Buffer.alloc(24); // struct bpf_tc_hook { size_t sz; int ifindex; enum attach_point; __u32 parent; }
  b.writeBigUInt64LE(24n, 0);
  b.writeInt32LE(ifindex, 8);
  b.writeUInt32LE(point, 12);
  return b;
}

function opts(progFd = 0, flags = 0, handle = AFSTEER_TC_HANDLE): Buffer {
  const b = Buffer.alloc(32); // struct bpf_tc_opts { size_t sz; int prog_fd; __u32 flags, prog_id, handle, priority; }
  b.writeBigUInt64LE(32n, 0);
  b.writeInt32LE(progFd, 8);
  b.writeUInt32LE(flags, 12);
  b.writeUInt32LE(handle, 20);
  b.writeUInt32LE(handle === AFSTEER_TC_HANDLE ? AFSTEER_TC_PRIORITY : handle, 24);
  return b;
}

/** Creates the clsact qdisc on ifindex; returns false when one already existed. */
export function ensureClsact(ifindex: number): boolean {
  const rc = libbpf().hookCreate(hook(ifindex, TcPoint.ingress | TcPoint.egress));
  if (rc === -EEXIST) return false;
  check(`create clsact on link #${ifindex}`, rc);
  return true;
}

/** Removes the clsact qdisc (and every filter under it); a missing one is not an error. */
export function destroyClsact(ifindex: number): void {
  const rc = libbpf().hookDestroy(hook(ifindex, TcPoint.ingress | TcPoint.egress));
  if (rc < 0 && rc !== -ENOENT && rc !== -EINVAL && rc !== -ENODEV) check(`remove clsact on link #${ifindex}`, rc);
}

/** Attaches (or replaces) afsteer's filter at point with progFd; returns the attached program id. handle (also the priority): another afsteer filter, e.g. the echo reflector's. */
export function attach(ifindex: number, point: TcPointName, progFd: number, handle = AFSTEER_TC_HANDLE): number {
  const o = opts(progFd, BPF_TC_F_REPLACE, handle);
  check(`attach tc ${point} filter on link #${ifindex}`, libbpf().tcAttach(hook(ifindex, TcPoint[point]), o));
  return o.readUInt32LE(16);
}

/** Program id of afsteer's filter (handle) at point, or undefined when it is absent. */
export function query(ifindex: number, point: TcPointName, handle = AFSTEER_TC_HANDLE): number | undefined {
  const o = opts(0, 0, handle);
  const rc = libbpf().tcQuery(hook(ifindex, TcPoint[point]), o);
  if (rc === -ENOENT || rc === -EINVAL || rc === -ENODEV) return undefined;
  check(`query tc ${point} filter on link #${ifindex}`, rc);
  return o.readUInt32LE(16);
}

/** Detaches afsteer's filter (handle) at point; already gone (or link gone) is not an error. */
export function detach(ifindex: number, point: TcPointName, handle = AFSTEER_TC_HANDLE): void {
  const rc = libbpf().tcDetach(hook(ifindex, TcPoint[point]), opts(0, 0, handle));
  if (rc < 0 && rc !== -ENOENT && rc !== -EINVAL && rc !== -ENODEV) check(`detach tc ${point} filter on link #${ifindex}`, rc);
}
