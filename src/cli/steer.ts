/**
 * `afsteer steer`: the operator's view and control of pair steering.
 *   afsteer steer show [--json]                       pairs, wire family, counters, node stats
 *   afsteer steer remote add IPV4 IPV6 | del ADDR | list [--json]
 *   afsteer steer set LOCAL REMOTE ipv4|ipv6|native [--generation N]
 *   afsteer steer clear LOCAL REMOTE
 * LOCAL is a local pod's address, its host veth name or its container id; REMOTE either address
 * of a registered remote pod. Common flags: --pin-dir DIR, --state-dir DIR (defaults: src/defaults.ts).
 */
import { listEndpoints, localEndpointByAddress } from '../bpf/endpoint-map';
import { Wire, type WireName } from '../bpf/maps-layout';
import { clearSteering, listPairs, listRemotes, readStats, registerRemote, setSteering, unregisterRemote } from '../bpf/steering';
import { DEFAULT_PIN_DIR, DEFAULT_STATE_DIR, nodeLockPath } from '../defaults';
import { canonical, familyOf } from '../net/ip';
import { attachmentLabel, listStates } from '../node/attachments';
import { causeText } from '../util/describe-error';
import { withLock } from '../util/lock';
import { printable, table } from './text';

const USAGE = `usage:
  afsteer steer show [--json]
  afsteer steer remote add IPV4 IPV6 | remote del ADDR | remote list [--json]
  afsteer steer set LOCAL REMOTE ipv4|ipv6|native [--generation N]
  afsteer steer clear LOCAL REMOTE
flags: --pin-dir DIR (default ${DEFAULT_PIN_DIR})  --state-dir DIR (default ${DEFAULT_STATE_DIR})
LOCAL: a local pod address, host veth name or container id; REMOTE: an address of a registered remote pod
`;

interface Opts {
  pinDir: string;
  stateDir: string;
  json: boolean;
  generation: number;
  args: string[];
}

function parse(argv: string[]): Opts {
  const o: Opts = { pinDir: DEFAULT_PIN_DIR, stateDir: DEFAULT_STATE_DIR, json: false, generation: 0, args: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--json') o.json = true;
    else if (a === '--pin-dir') o.pinDir = next();
    else if (a === '--state-dir') o.stateDir = next();
    else if (a === '--generation') o.generation = Number(next());
    else if (a.startsWith('--')) throw new UsageError(`unknown flag ${a}`);
    else o.args.push(a);
  }
  if (!Number.isInteger(o.generation) || o.generation < 0 || o.generation > 0xffffffff)
    throw new UsageError('--generation must be an unsigned 32-bit integer');
  return o;
}

class UsageError extends Error {}

/** Resolves LOCAL (address, host veth name, "ifname@container" or container id) to the endpoint key. */
function resolveLocal(o: Opts, local: string): number {
  if (familyOf(local)) {
    const ifindex = localEndpointByAddress(o.pinDir, local);
    if (ifindex === undefined) throw new Error(`no local pod has address ${local}`);
    return ifindex;
  }
  const st = listStates(o.stateDir).find((s) => s.hostIfname === local || attachmentLabel(s) === local || s.containerId === local);
  if (st && listEndpoints(o.pinDir).has(st.endpoint)) return st.endpoint;
  throw new Error(`no local pod matches ${JSON.stringify(local)} (give its address, host veth name or container id)`);
}

function wireOf(s: string | undefined): WireName {
  // Own keys only: "constructor" or "__proto__" are not families.
  if (s && Object.hasOwn(Wire, s)) return s as WireName;
  throw new UsageError(`family must be ipv4, ipv6 or native, got ${JSON.stringify(printable(s ?? ''))}`);
}

/** An address argument: a plain IPv4 or IPv6 address (no zone, no prefix). */
function addressArg(what: string, s: string): string {
  if (familyOf(s)) return s;
  throw new UsageError(`${what} must be an IPv4 or IPv6 address without zone or prefix, got ${JSON.stringify(printable(s))}`);
}

const str = (v: unknown): unknown =>
  typeof v === 'bigint'
    ? v.toString()
    : Array.isArray(v)
      ? v.map(str)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, str(x)]))
        : v;

function show(o: Opts, write: (s: string) => void): void {
  const eps = listEndpoints(o.pinDir);
  const names = new Map(listStates(o.stateDir).map((s) => [s.endpoint, attachmentLabel(s)]));
  const pairs = listPairs(o.pinDir).sort((a, b) => a.ifindex - b.ifindex || a.remoteIpv6.localeCompare(b.remoteIpv6));
  const stats = readStats(o.pinDir);
  if (o.json) {
    write(
      JSON.stringify(
        str({ pairs: pairs.map((p) => ({ ...p, local: eps.get(p.ifindex), hostIfname: names.get(p.ifindex) })), stats }),
        null,
        2,
      ) + '\n',
    );
    return;
  }
  const rows = pairs.map((p) => {
    const ep = eps.get(p.ifindex);
    const c = p.counters;
    return [
      names.get(p.ifindex) ?? `#${p.ifindex}`,
      `${ep?.ipv4 ?? '-'} ${ep?.ipv6 ?? '-'}`,
      `${p.remoteIpv4 ?? '-'} ${p.remoteIpv6}`,
      p.wire,
      String(p.generation),
      c ? `${c.nativePackets[0]}/${c.nativePackets[1]}` : '-',
      c ? `${c.encapPackets[0]}/${c.encapPackets[1]}` : '-',
      c ? `${c.decapPackets[0]}/${c.decapPackets[1]}` : '-',
      c ? `${c.dropSpoof}/${c.dropMismatch}` : '-',
    ];
  });
  write(
    table(
      ['HOST-VETH', 'LOCAL POD', 'REMOTE POD', 'WIRE', 'GEN', 'NATIVE v4/v6', 'ENCAP v4/v6', 'DECAP v4/v6', 'DROP spoof/mismatch'],
      rows,
    ),
  );
  write(
    `node: encap ${stats.encap} decap ${stats.decap} drop-spoof ${stats.dropSpoof} drop-mismatch ${stats.dropMismatch} encap-fail ${stats.encapFail} decap-fail ${stats.decapFail} not-own-source ${stats.srcForeign}\n`,
  );
}

/** Runs `afsteer steer ...`; returns the exit code. Changes are made under the node lock (shared with the CNI plugin). */
export async function runSteer(argv: string[], write: (s: string) => void): Promise<number> {
  try {
    const o = parse(argv);
    const [cmd] = o.args;
    if (cmd === 'show' || cmd === undefined || (cmd === 'remote' && o.args[1] === 'list')) return steer(o, write);
    return await withLock(nodeLockPath(o.stateDir), 10_000, async () => steer(o, write));
  } catch (err) {
    return report(err);
  }
}

function report(err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`afsteer steer: ${err.message}\n${USAGE}`);
    return 2;
  }
  process.stderr.write(`afsteer steer: ${causeText(err)}\n`);
  return 1;
}

function steer(o: Opts, write: (s: string) => void): number {
  try {
    const [cmd, ...rest] = o.args;
    switch (cmd) {
      case 'show':
      case undefined:
        show(o, write);
        return 0;
      case 'remote': {
        const [sub, a, b] = rest;
        if (sub === 'add' && a && b) {
          addressArg('IPV4', a);
          addressArg('IPV6', b);
          const [ipv4, ipv6] = familyOf(a) === 4 ? [a, b] : [b, a]; // either order on the command line
          registerRemote(o.pinDir, { ipv4, ipv6 });
          write(`registered remote pod ${canonical(ipv4)} ${canonical(ipv6)}\n`);
          return 0;
        }
        if (sub === 'del' && a) {
          addressArg('ADDR', a);
          write(unregisterRemote(o.pinDir, a) ? `unregistered remote pod ${a}\n` : `no remote pod ${a}\n`);
          return 0;
        }
        if (sub === 'list') {
          const rs = listRemotes(o.pinDir);
          write(
            o.json
              ? JSON.stringify(rs, null, 2) + '\n'
              : table(
                  ['IPV4', 'IPV6'],
                  rs.map((r) => [r.ipv4, r.ipv6]),
                ),
          );
          return 0;
        }
        throw new UsageError('remote needs: add IPV4 IPV6 | del ADDR | list');
      }
      case 'set': {
        const [local, remote, fam] = rest;
        if (!local || !remote) throw new UsageError('set needs LOCAL REMOTE FAMILY');
        const wire = wireOf(fam);
        addressArg('REMOTE', remote);
        setSteering(o.pinDir, resolveLocal(o, local), remote, wire, o.generation);
        write(`${printable(local)} -> ${remote}: wire ${wire}\n`);
        return 0;
      }
      case 'clear': {
        const [local, remote] = rest;
        if (!local || !remote) throw new UsageError('clear needs LOCAL REMOTE');
        addressArg('REMOTE', remote);
        write(
          clearSteering(o.pinDir, resolveLocal(o, local), remote)
            ? `cleared ${printable(local)} -> ${remote} (native)\n`
            : `no steering entry for ${printable(local)} -> ${remote}\n`,
        );
        return 0;
      }
      default:
        throw new UsageError(`unknown steer command ${JSON.stringify(printable(cmd))}`);
    }
  } catch (err) {
    return report(err);
  }
}
