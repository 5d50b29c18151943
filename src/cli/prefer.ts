/** `afsteerd prefer PEER-NODE|CNF-ID ipv4|ipv6|auto`: pins a family through the control socket and says what the daemon did. */
import { controlRequest } from '../control/client';
import { type PreferRequest, preferRequest } from '../control/requests';
import { DEFAULT_CONTROL_SOCKET } from '../defaults';
import { describeError } from '../util/describe-error';
import { printable } from './text';

/** Runs the command; resolves with the exit code (2: usage, 1: refused or unreachable). */
export async function runPrefer(args: string[], socket: string | undefined, json: boolean, write: (s: string) => void): Promise<number> {
  const [target, family, ...extra] = args;
  if (!target || !family || extra.length || !['ipv4', 'ipv6', 'auto'].includes(family)) {
    process.stderr.write('usage: afsteerd prefer PEER-NODE|CNF-ID ipv4|ipv6|auto [--socket PATH]\n');
    return 2;
  }
  try {
    const r = await controlRequest(socket ?? DEFAULT_CONTROL_SOCKET, preferRequest(target, family as PreferRequest['family']), 3000);
    if (json) write(JSON.stringify(r, null, 2) + '\n');
    else if (r.ok === true)
      write(
        family === 'auto'
          ? `${printable(target)}: back to negotiation\n`
          : `${printable(target)} (${printable(String(r.kind))}) pinned to ${family}; ${Number(r.pairs)} pair(s) under a pin\n`,
      );
    else process.stderr.write(`afsteerd prefer: ${printable(String(r.error))}\n`);
    return r.ok === true ? 0 : 1;
  } catch (err) {
    process.stderr.write(`afsteerd prefer: ${describeError(err)}\n`);
    return 1;
  }
}
